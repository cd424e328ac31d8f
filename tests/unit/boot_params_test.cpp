// The boot information a kernel reads: e820 map, Linux zero page (checked by byte offset,
// as the kernel reads it), PVH start_info + memmap, and the command line.
#include "arch/x86_64/boot_params.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "arch/x86_64/boot/boot_info.hpp"
#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/pvh.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

GuestMemory make_mem(uint64_t bytes) {
  std::vector<GuestMemory::Range> ranges;
  for (const auto& r : ram_ranges(bytes)) ranges.push_back({r.gpa, r.size});
  auto mem = GuestMemory::create_anonymous(ranges);
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

template <typename T>
T at(const GuestMemory& mem, uint64_t gpa) {
  auto v = mem.read_obj<T>(gpa);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return v.ok() ? *v : T{};
}

// A zero-page field, by its offset in boot.rst / zero-page.rst.
template <typename T>
T zp(const GuestMemory& mem, uint64_t offset) {
  return at<T>(mem, kBootParamsAddr + offset);
}

LoadedKernel elf_kernel() {
  LoadedKernel k{};
  k.protocol = BootProtocol::Linux64;
  k.entry = 0x1000000;
  k.load_start = 0x1000000;
  k.load_end = 0x1800000;
  k.format = "elf";
  k.cmdline_max = kCmdlineMaxSize - 1;
  return k;
}

// A bzImage setup header (file bytes 0x1f1..0x26c) with recognisable values.
LoadedKernel bzimage_kernel() {
  std::vector<uint8_t> hdr(0x26c - 0x1f1, 0);
  auto put32 = [&](uint64_t off, uint32_t v) { std::memcpy(&hdr[off - 0x1f1], &v, 4); };
  auto put16 = [&](uint64_t off, uint16_t v) { std::memcpy(&hdr[off - 0x1f1], &v, 2); };
  hdr[0] = 27;                // setup_sects
  put16(0x206, 0x020f);       // version
  hdr[0x211 - 0x1f1] = 0x01;  // loadflags: LOADED_HIGH
  put32(0x214, 0x100000);     // code32_start
  put32(0x22c, 0x7fffffff);   // initrd_addr_max
  put32(0x230, 0x200000);     // kernel_alignment
  put16(0x236, 0x7f);         // xloadflags
  put32(0x238, 2047);         // cmdline_size
  put32(0x260, 0x01234000);   // init_size
  LoadedKernel k = elf_kernel();
  k.format = "bzimage";
  k.entry = 0x100200;
  k.load_start = 0x100000;
  k.setup_header = hdr;
  k.initrd_addr_max = 0x7fffffff;
  k.cmdline_max = 2047;
  return k;
}

LoadedKernel pvh_kernel() {
  LoadedKernel k = elf_kernel();
  k.protocol = BootProtocol::Pvh;
  k.format = "pvh";
  return k;
}

void expect_no_ram_in_mmio_gap(const std::vector<E820Range>& map) {
  for (const auto& e : map)
    if (e.type == kE820Ram) {
      EXPECT_TRUE(e.addr + e.size <= kMmioGapStart || e.addr >= kMmioGapEnd)
          << std::hex << e.addr << "+" << e.size;
    }
}

TEST(E820Test, SmallGuest) {
  auto mem = make_mem(128 * kMiB);
  const std::vector<E820Range> expected = {
      {0, kEbdaStart, kE820Ram},
      {kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved},
      {kHighMemStart, 128 * kMiB - kHighMemStart, kE820Ram},
  };
  EXPECT_EQ(e820_map(mem), expected);
}

TEST(E820Test, LargeGuestsSkipTheMmioGap) {
  for (uint64_t size : {4 * kGiB, 6 * kGiB}) {
    auto mem = make_mem(size);
    const std::vector<E820Range> expected = {
        {0, kEbdaStart, kE820Ram},
        {kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved},
        {kHighMemStart, kMmioGapStart - kHighMemStart, kE820Ram},
        {kMmioGapEnd, size - kMmioGapStart, kE820Ram},
    };
    auto map = e820_map(mem);
    EXPECT_EQ(map, expected) << size;
    expect_no_ram_in_mmio_gap(map);
    uint64_t ram = 0;
    for (const auto& e : map)
      if (e.type == kE820Ram) ram += e.size;
    EXPECT_EQ(ram, size - (kHighMemStart - kEbdaStart));
  }
}

TEST(E820Test, GuestEndingExactlyAtTheGap) {
  auto mem = make_mem(kMmioGapStart);
  auto map = e820_map(mem);
  ASSERT_EQ(map.size(), 3u);
  EXPECT_EQ(map[2].addr + map[2].size, kMmioGapStart);
}

TEST(E820Test, ContiguousRegionsMergeAndHolesAreCut) {
  // Split RAM that also strays into the MMIO gap: the map must merge the pieces and
  // leave the gap out.
  auto mem = GuestMemory::create_anonymous(
      {{0, 64 * kMiB}, {64 * kMiB, 64 * kMiB}, {kMmioGapStart - kMiB, 2 * kMiB}});
  ASSERT_TRUE(mem.ok()) << mem.error().message;
  auto map = e820_map(*mem);
  const std::vector<E820Range> expected = {
      {0, kEbdaStart, kE820Ram},
      {kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved},
      {kHighMemStart, 128 * kMiB - kHighMemStart, kE820Ram},
      {kMmioGapStart - kMiB, kMiB, kE820Ram},
  };
  EXPECT_EQ(map, expected);
}

TEST(ZeroPageTest, ElfKernelGetsFirecrackersHeader) {
  auto mem = make_mem(128 * kMiB);
  BootInfo info{"console=ttyS0 panic=1", InitrdPlacement{0x7000000, 0x12345}, kRsdpAddr};
  auto r = write_boot_info(mem, elf_kernel(), info);
  ASSERT_TRUE(r.ok()) << r.error().message;

  EXPECT_EQ(zp<uint16_t>(mem, 0x1fe), 0xaa55);                   // boot_flag
  EXPECT_EQ(zp<uint32_t>(mem, 0x202), 0x53726448u);              // "HdrS"
  EXPECT_EQ(zp<uint8_t>(mem, 0x210), 0xff);                      // type_of_loader
  EXPECT_EQ(zp<uint8_t>(mem, 0x211) & 1, 1);                     // loadflags: LOADED_HIGH
  EXPECT_EQ(zp<uint32_t>(mem, 0x230), 0x01000000u);              // kernel_alignment
  EXPECT_EQ(zp<uint32_t>(mem, 0x228), kCmdlineAddr);             // cmd_line_ptr
  EXPECT_EQ(zp<uint32_t>(mem, 0x238), info.cmdline.size() + 1);  // cmdline_size
  EXPECT_EQ(zp<uint32_t>(mem, 0x218), 0x7000000u);               // ramdisk_image
  EXPECT_EQ(zp<uint32_t>(mem, 0x21c), 0x12345u);                 // ramdisk_size
  EXPECT_EQ(zp<uint32_t>(mem, 0x0c0), 0u);                       // ext_ramdisk_image
  EXPECT_EQ(zp<uint64_t>(mem, 0x070), kRsdpAddr);                // acpi_rsdp_addr
  EXPECT_EQ(zp<uint8_t>(mem, 0x1ef), 0);                         // sentinel

  const auto map = e820_map(mem);
  ASSERT_EQ(zp<uint8_t>(mem, 0x1e8), map.size());  // e820_entries
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t e = 0x2d0 + i * 20;
    EXPECT_EQ(zp<uint64_t>(mem, e), map[i].addr) << i;
    EXPECT_EQ(zp<uint64_t>(mem, e + 8), map[i].size) << i;
    EXPECT_EQ(zp<uint32_t>(mem, e + 16), map[i].type) << i;
  }
  EXPECT_EQ(zp<uint64_t>(mem, 0x2d0 + map.size() * 20), 0u);  // nothing after the last

  std::string cmdline(info.cmdline.size() + 1, 'x');
  ASSERT_TRUE(
      mem.read(kCmdlineAddr, {reinterpret_cast<uint8_t*>(cmdline.data()), cmdline.size()}).ok());
  EXPECT_EQ(cmdline, info.cmdline + '\0');
}

TEST(ZeroPageTest, BzImageSetupHeaderIsCopiedThenOverridden) {
  auto mem = make_mem(128 * kMiB);
  auto kernel = bzimage_kernel();
  auto r = write_boot_info(mem, kernel, {"root=/dev/vda", std::nullopt, 0});
  ASSERT_TRUE(r.ok()) << r.error().message;
  // The kernel's own fields survive...
  EXPECT_EQ(zp<uint8_t>(mem, 0x1f1), 27);            // setup_sects
  EXPECT_EQ(zp<uint16_t>(mem, 0x206), 0x020f);       // version
  EXPECT_EQ(zp<uint32_t>(mem, 0x214), 0x100000u);    // code32_start
  EXPECT_EQ(zp<uint32_t>(mem, 0x230), 0x200000u);    // kernel_alignment, not the ELF default
  EXPECT_EQ(zp<uint16_t>(mem, 0x236), 0x7f);         // xloadflags
  EXPECT_EQ(zp<uint32_t>(mem, 0x260), 0x01234000u);  // init_size
  // ...and the loader's are filled in.
  EXPECT_EQ(zp<uint16_t>(mem, 0x1fe), 0xaa55);
  EXPECT_EQ(zp<uint32_t>(mem, 0x202), 0x53726448u);
  EXPECT_EQ(zp<uint8_t>(mem, 0x210), 0xff);
  EXPECT_EQ(zp<uint32_t>(mem, 0x228), kCmdlineAddr);
  EXPECT_EQ(zp<uint32_t>(mem, 0x218), 0u);  // no initrd
  EXPECT_EQ(zp<uint32_t>(mem, 0x21c), 0u);
  EXPECT_EQ(zp<uint64_t>(mem, 0x070), 0u);  // no RSDP
  EXPECT_EQ(zp<uint8_t>(mem, 0x1e8), 3);
}

TEST(ZeroPageTest, StaleZeroPageContentIsCleared) {
  auto mem = make_mem(128 * kMiB);
  ASSERT_TRUE(mem.fill(kBootParamsAddr, 0xab, 0x1000).ok());
  ASSERT_TRUE(write_boot_info(mem, elf_kernel(), {"", std::nullopt, 0}).ok());
  EXPECT_EQ(zp<uint8_t>(mem, 0x1ef), 0);    // sentinel
  EXPECT_EQ(zp<uint64_t>(mem, 0x058), 0u);  // tboot_addr
  EXPECT_EQ(zp<uint64_t>(mem, 0x250), 0u);  // setup_data
  EXPECT_EQ(zp<uint8_t>(mem, 0xfff), 0);    // end of the page
  EXPECT_EQ(zp<uint32_t>(mem, 0x238), 1u);  // empty command line: just the NUL
  EXPECT_EQ(at<uint8_t>(mem, kCmdlineAddr), 0);
}

TEST(ZeroPageTest, LargeGuestE820) {
  auto mem = make_mem(6 * kGiB);
  ASSERT_TRUE(write_boot_info(mem, elf_kernel(), {"", std::nullopt, 0}).ok());
  ASSERT_EQ(zp<uint8_t>(mem, 0x1e8), 4);
  EXPECT_EQ(zp<uint64_t>(mem, 0x2d0 + 3 * 20), kMmioGapEnd);
  EXPECT_EQ(zp<uint64_t>(mem, 0x2d0 + 3 * 20 + 8), 6 * kGiB - kMmioGapStart);
}

TEST(CmdlineTest, LimitsAreEnforced) {
  auto mem = make_mem(128 * kMiB);
  // The whole 64 KiB area, NUL included, is fine for an ELF kernel...
  EXPECT_TRUE(
      write_boot_info(mem, elf_kernel(), {std::string(kCmdlineMaxSize - 1, 'a'), std::nullopt, 0})
          .ok());
  EXPECT_EQ(at<uint8_t>(mem, kCmdlineAddr + kCmdlineMaxSize - 1), 0);
  // ...one more byte is not.
  auto too_long =
      write_boot_info(mem, elf_kernel(), {std::string(kCmdlineMaxSize, 'a'), std::nullopt, 0});
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("at most"), std::string::npos);
  // A bzImage says how long a command line it takes.
  EXPECT_TRUE(
      write_boot_info(mem, bzimage_kernel(), {std::string(2047, 'b'), std::nullopt, 0}).ok());
  auto over_kernel =
      write_boot_info(mem, bzimage_kernel(), {std::string(2048, 'b'), std::nullopt, 0});
  ASSERT_FALSE(over_kernel.ok());
  EXPECT_NE(over_kernel.error().message.find("2047"), std::string::npos);
  // An embedded NUL would silently cut the command line short.
  EXPECT_FALSE(write_boot_info(mem, elf_kernel(), {std::string("a\0b", 3), std::nullopt, 0}).ok());
}

TEST(ZeroPageTest, InitrdAboveInitrdAddrMaxIsRefused) {
  auto mem = make_mem(4 * kGiB);
  auto kernel = bzimage_kernel();
  kernel.initrd_addr_max = 0x37ffffff;
  EXPECT_TRUE(write_boot_info(mem, kernel, {"", InitrdPlacement{0x37fff000, 0x1000}, 0}).ok());
  auto r = write_boot_info(mem, kernel, {"", InitrdPlacement{0x37fff000, 0x1001}, 0});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("initrd_addr_max"), std::string::npos);
  EXPECT_FALSE(write_boot_info(mem, kernel, {"", InitrdPlacement{0x1000000, 0}, 0}).ok());
}

TEST(PvhStartInfoTest, StartInfoModuleAndMemmap) {
  auto mem = make_mem(6 * kGiB);
  BootInfo info{"console=hvc0", InitrdPlacement{0x8000000, 0x4321}, kRsdpAddr};
  auto r = write_boot_info(mem, pvh_kernel(), info);
  ASSERT_TRUE(r.ok()) << r.error().message;

  const uint64_t si = kPvhStartInfoAddr;
  EXPECT_EQ(at<uint32_t>(mem, si + 0x00), 0x336ec578u);  // magic
  EXPECT_EQ(at<uint32_t>(mem, si + 0x04), 1u);           // version
  EXPECT_EQ(at<uint32_t>(mem, si + 0x08), 0u);           // flags
  EXPECT_EQ(at<uint32_t>(mem, si + 0x0c), 1u);           // nr_modules
  const uint64_t modlist = at<uint64_t>(mem, si + 0x10);
  EXPECT_EQ(at<uint64_t>(mem, si + 0x18), kCmdlineAddr);  // cmdline_paddr
  EXPECT_EQ(at<uint64_t>(mem, si + 0x20), kRsdpAddr);     // rsdp_paddr
  const uint64_t memmap = at<uint64_t>(mem, si + 0x28);
  const uint32_t entries = at<uint32_t>(mem, si + 0x30);

  EXPECT_EQ(modlist, kPvhModlistAddr);
  EXPECT_EQ(at<uint64_t>(mem, modlist + 0x00), 0x8000000u);  // paddr
  EXPECT_EQ(at<uint64_t>(mem, modlist + 0x08), 0x4321u);     // size
  EXPECT_EQ(at<uint64_t>(mem, modlist + 0x10), 0u);          // cmdline_paddr

  // The memmap follows start_info in the same page and does not reach the zero page.
  EXPECT_GE(memmap, si + 0x38);
  EXPECT_GE(memmap, modlist + 0x20);
  EXPECT_LE(memmap + entries * 24, kBootParamsAddr);
  const auto map = e820_map(mem);
  ASSERT_EQ(entries, map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_EQ(at<uint64_t>(mem, memmap + i * 24), map[i].addr) << i;
    EXPECT_EQ(at<uint64_t>(mem, memmap + i * 24 + 8), map[i].size) << i;
    EXPECT_EQ(at<uint32_t>(mem, memmap + i * 24 + 16), map[i].type) << i;
    EXPECT_EQ(at<uint32_t>(mem, memmap + i * 24 + 20), 0u) << i;
  }
  EXPECT_EQ(at<uint64_t>(mem, memmap + 3 * 24), kMmioGapEnd);

  std::string cmdline(info.cmdline.size() + 1, 'x');
  ASSERT_TRUE(
      mem.read(kCmdlineAddr, {reinterpret_cast<uint8_t*>(cmdline.data()), cmdline.size()}).ok());
  EXPECT_EQ(cmdline, info.cmdline + '\0');
  // A PVH boot leaves the zero page alone.
  EXPECT_EQ(zp<uint32_t>(mem, 0x202), 0u);
}

TEST(PvhStartInfoTest, NoInitrdMeansNoModulesAndStaleOnesGo) {
  auto mem = make_mem(128 * kMiB);
  ASSERT_TRUE(write_boot_info(mem, pvh_kernel(), {"", InitrdPlacement{0x7000000, 0x10}, 0}).ok());
  ASSERT_TRUE(write_boot_info(mem, pvh_kernel(), {"", std::nullopt, 0}).ok());
  EXPECT_EQ(at<uint32_t>(mem, kPvhStartInfoAddr + 0x0c), 0u);  // nr_modules
  EXPECT_EQ(at<uint64_t>(mem, kPvhStartInfoAddr + 0x10), 0u);  // modlist_paddr
  EXPECT_EQ(at<uint64_t>(mem, kPvhModlistAddr), 0u);           // old module entry cleared
  EXPECT_EQ(at<uint64_t>(mem, kPvhStartInfoAddr + 0x20), 0u);  // rsdp_paddr
  EXPECT_EQ(at<uint32_t>(mem, kPvhStartInfoAddr + 0x30), 3u);  // memmap_entries
}

}  // namespace
}  // namespace ignition::x86_64
