// Kernel image loading (ELF, PVH ELF, bzImage) and initrd placement, with images built
// byte by byte here, including malformed ones that must fail cleanly.
#include "arch/x86_64/kernel_loader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "arch/x86_64/initrd.hpp"
#include "arch/x86_64/layout.hpp"
#include "memory/guest_memory.hpp"
#include "support/paths.hpp"

namespace ignition::x86_64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

template <typename T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  if (b.size() < off + sizeof(T)) b.resize(off + sizeof(T));
  std::memcpy(b.data() + off, &v, sizeof(T));
}

template <typename T>
T get(const std::vector<uint8_t>& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

GuestMemory make_mem(uint64_t bytes) {
  std::vector<GuestMemory::Range> ranges;
  for (const auto& r : ram_ranges(bytes)) ranges.push_back({r.gpa, r.size});
  auto mem = GuestMemory::create_anonymous(ranges);
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

std::vector<uint8_t> read_guest(const GuestMemory& mem, uint64_t gpa, size_t n) {
  std::vector<uint8_t> out(n);
  auto r = mem.read(gpa, out);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

// ---- ELF images ----

constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
size_t phdr_off(size_t i) {
  return kEhdrSize + i * kPhdrSize;
}
// Program header field offsets.
constexpr size_t kPType = 0, kPOffset = 8, kPPaddr = 24, kPFilesz = 32, kPMemsz = 40, kPAlign = 48;

struct ElfSegment {
  uint64_t paddr;
  std::vector<uint8_t> data;
  uint64_t memsz;
};

struct Note {
  std::string name;  // without the NUL
  uint32_t type;
  std::vector<uint8_t> desc;
};

std::vector<uint8_t> note_bytes(const std::vector<Note>& notes) {
  std::vector<uint8_t> out;
  auto pad4 = [&] {
    while (out.size() % 4) out.push_back(0);
  };
  for (const Note& n : notes) {
    size_t at = out.size();
    put<uint32_t>(out, at, static_cast<uint32_t>(n.name.size() + 1));
    put<uint32_t>(out, at + 4, static_cast<uint32_t>(n.desc.size()));
    put<uint32_t>(out, at + 8, n.type);
    out.insert(out.end(), n.name.begin(), n.name.end());
    out.push_back(0);
    pad4();
    out.insert(out.end(), n.desc.begin(), n.desc.end());
    pad4();
  }
  return out;
}

std::vector<uint8_t> xen_entry_desc(uint64_t entry) {
  std::vector<uint8_t> d(8);
  std::memcpy(d.data(), &entry, 8);  // Linux emits an 8-byte _ASM_PTR on x86_64
  return d;
}

// ehdr, program headers (notes first, then loads), note data, segment data.
std::vector<uint8_t> make_elf(uint64_t entry, const std::vector<ElfSegment>& segs,
                              const std::vector<Note>& notes = {}) {
  const size_t nph = segs.size() + (notes.empty() ? 0 : 1);
  std::vector<uint8_t> b(kEhdrSize + nph * kPhdrSize, 0);
  const uint8_t ident[16] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memcpy(b.data(), ident, sizeof ident);
  put<uint16_t>(b, 16, 2);   // ET_EXEC
  put<uint16_t>(b, 18, 62);  // EM_X86_64
  put<uint32_t>(b, 20, 1);
  put<uint64_t>(b, 24, entry);
  put<uint64_t>(b, 32, kEhdrSize);
  put<uint16_t>(b, 52, kEhdrSize);
  put<uint16_t>(b, 54, kPhdrSize);
  put<uint16_t>(b, 56, static_cast<uint16_t>(nph));
  size_t ph = 0;
  if (!notes.empty()) {
    auto nb = note_bytes(notes);
    size_t at = b.size();
    b.insert(b.end(), nb.begin(), nb.end());
    put<uint32_t>(b, phdr_off(ph) + kPType, 4);
    put<uint64_t>(b, phdr_off(ph) + kPOffset, at);
    put<uint64_t>(b, phdr_off(ph) + kPFilesz, nb.size());
    put<uint64_t>(b, phdr_off(ph) + kPAlign, 4);
    ++ph;
  }
  for (const ElfSegment& s : segs) {
    size_t at = b.size();
    b.insert(b.end(), s.data.begin(), s.data.end());
    put<uint32_t>(b, phdr_off(ph) + kPType, 1);
    put<uint64_t>(b, phdr_off(ph) + kPOffset, at);
    put<uint64_t>(b, phdr_off(ph) + 16, s.paddr);  // vaddr
    put<uint64_t>(b, phdr_off(ph) + kPPaddr, s.paddr);
    put<uint64_t>(b, phdr_off(ph) + kPFilesz, s.data.size());
    put<uint64_t>(b, phdr_off(ph) + kPMemsz, s.memsz);
    put<uint64_t>(b, phdr_off(ph) + kPAlign, 0x1000);
    ++ph;
  }
  return b;
}

// Two segments like a vmlinux: text at 16 MiB, data + bss after it.
std::vector<uint8_t> sample_elf(const std::vector<Note>& notes = {}) {
  return make_elf(0x1000000,
                  {{0x1000000, pattern(0x300, 1), 0x300}, {0x1200000, pattern(0x80, 9), 0x3000}},
                  notes);
}

void expect_error(const Result<LoadedKernel>& r, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "loaded, expected an error containing '" << needle << "'";
  EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
}

TEST(ElfLoaderTest, LoadsSegmentsAtPhysicalAddressesAndZeroesBss) {
  auto mem = make_mem(128 * kMiB);
  ASSERT_TRUE(mem.fill(0x1200000, 0xee, 0x3000).ok());  // stale bytes where bss goes
  auto k = load_kernel_bytes(mem, sample_elf());
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::Linux64);
  EXPECT_EQ(k->format, "elf");
  EXPECT_EQ(k->entry, 0x1000000u);
  EXPECT_EQ(k->load_start, 0x1000000u);
  EXPECT_EQ(k->load_end, 0x1203000u);
  EXPECT_FALSE(k->setup_header.has_value());
  EXPECT_EQ(read_guest(mem, 0x1000000, 0x300), pattern(0x300, 1));
  EXPECT_EQ(read_guest(mem, 0x1200000, 0x80), pattern(0x80, 9));
  EXPECT_EQ(read_guest(mem, 0x1200080, 0x3000 - 0x80), std::vector<uint8_t>(0x3000 - 0x80, 0));
}

TEST(ElfLoaderTest, XenNoteSelectsPvhUnlessLinux64IsForced) {
  // A build-id note first, as in a real vmlinux, then the PVH entry.
  std::vector<Note> notes = {{"GNU", 3, pattern(20, 3)}, {"Xen", 18, xen_entry_desc(0x1000040)}};
  auto image = sample_elf(notes);
  auto mem = make_mem(128 * kMiB);
  auto pvh = load_kernel_bytes(mem, image, /*prefer_pvh=*/true);
  ASSERT_TRUE(pvh.ok()) << pvh.error().message;
  EXPECT_EQ(pvh->protocol, BootProtocol::Pvh);
  EXPECT_EQ(pvh->format, "pvh");
  EXPECT_EQ(pvh->entry, 0x1000040u);

  auto linux64 = load_kernel_bytes(mem, image, /*prefer_pvh=*/false);
  ASSERT_TRUE(linux64.ok()) << linux64.error().message;
  EXPECT_EQ(linux64->protocol, BootProtocol::Linux64);
  EXPECT_EQ(linux64->entry, 0x1000000u);
}

TEST(ElfLoaderTest, NotesThatAreNotTheXenEntryAreIgnored) {
  auto mem = make_mem(128 * kMiB);
  // Type 18 under another name, and a Xen note of another type.
  auto k = load_kernel_bytes(
      mem, sample_elf({{"Xem", 18, xen_entry_desc(0x1000040)}, {"Xen", 17, pattern(8, 0)}}));
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::Linux64);
}

TEST(ElfLoaderTest, LoadsFromAFile) {
  auto image = sample_elf({{"Xen", 18, xen_entry_desc(0x1000010)}});
  char path[] = "/tmp/ignition-kernel-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, image.data(), image.size()), static_cast<ssize_t>(image.size()));
  close(fd);
  auto mem = make_mem(128 * kMiB);
  auto k = load_kernel(mem, path);
  unlink(path);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->protocol, BootProtocol::Pvh);
  EXPECT_EQ(k->entry, 0x1000010u);
  EXPECT_EQ(read_guest(mem, 0x1000000, 0x300), pattern(0x300, 1));

  auto missing = load_kernel(mem, "/nonexistent/vmlinux");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/vmlinux"), std::string::npos);
}

TEST(ElfLoaderTest, RejectsMalformedHeaders) {
  auto mem = make_mem(128 * kMiB);
  auto good = sample_elf();
  {
    std::vector<uint8_t> b(good.begin(), good.begin() + 40);
    expect_error(load_kernel_bytes(mem, b), "truncated");
  }
  {
    auto b = good;
    b[4] = 1;  // ELFCLASS32
    expect_error(load_kernel_bytes(mem, b), "32-bit");
  }
  {
    auto b = good;
    b[5] = 2;  // big-endian
    expect_error(load_kernel_bytes(mem, b), "big-endian");
  }
  {
    auto b = good;
    put<uint16_t>(b, 18, 3);  // EM_386
    expect_error(load_kernel_bytes(mem, b), "machine");
  }
  {
    auto b = good;
    put<uint16_t>(b, 16, 1);  // ET_REL
    expect_error(load_kernel_bytes(mem, b), "type");
  }
  {
    auto b = good;
    put<uint16_t>(b, 54, 32);
    expect_error(load_kernel_bytes(mem, b), "program header size");
  }
  {
    auto b = good;
    put<uint16_t>(b, 56, 0);
    expect_error(load_kernel_bytes(mem, b), "program header count");
  }
  {
    auto b = good;
    put<uint64_t>(b, 32, b.size() - 10);  // program headers run past EOF
    expect_error(load_kernel_bytes(mem, b), "past the end");
  }
  {
    auto b = good;
    put<uint64_t>(b, 32, UINT64_MAX - 8);  // e_phoff + size wraps
    expect_error(load_kernel_bytes(mem, b), "past the end");
  }
  {
    auto b = good;
    put<uint16_t>(b, 56, 0xfff0);  // far more headers than the file holds
    expect_error(load_kernel_bytes(mem, b), "past the end");
  }
}

TEST(ElfLoaderTest, RejectsBadSegments) {
  auto mem = make_mem(128 * kMiB);
  auto good = sample_elf();
  const size_t ph1 = phdr_off(1);  // the second PT_LOAD
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPFilesz, 0x4000);  // > p_memsz 0x3000
    expect_error(load_kernel_bytes(mem, b), "exceeds memory size");
  }
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPOffset, b.size() - 0x10);  // data past EOF
    expect_error(load_kernel_bytes(mem, b), "past the end");
  }
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPOffset, UINT64_MAX - 0x10);  // offset + filesz wraps
    expect_error(load_kernel_bytes(mem, b), "past the end");
  }
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPPaddr, 0x7000);  // over the zero page
    expect_error(load_kernel_bytes(mem, b), "below");
  }
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPPaddr, 128 * kMiB - 0x1000);  // runs off the end of RAM
    expect_error(load_kernel_bytes(mem, b), "not inside guest RAM");
  }
  {
    auto b = good;
    put<uint64_t>(b, ph1 + kPPaddr, UINT64_MAX - 0x1000);  // paddr + memsz wraps
    expect_error(load_kernel_bytes(mem, b), "overflows");
  }
  {
    auto b = good;
    put<uint64_t>(b, 24, 0x1100000);  // entry between the segments
    expect_error(load_kernel_bytes(mem, b), "outside the loaded segments");
  }
  {
    auto b = good;
    put<uint32_t>(b, phdr_off(0) + kPType, 6);  // PT_PHDR
    put<uint32_t>(b, ph1 + kPType, 6);
    expect_error(load_kernel_bytes(mem, b), "no loadable segments");
  }
}

TEST(ElfLoaderTest, RejectsSegmentsInTheMmioGap) {
  auto mem = make_mem(4 * kGiB);
  auto b = make_elf(kMmioGapStart - 0x1000, {{kMmioGapStart - 0x1000, pattern(0x10, 0), 0x2000}});
  expect_error(load_kernel_bytes(mem, b), "not inside guest RAM");
}

TEST(ElfLoaderTest, FailedLoadLeavesGuestMemoryUntouched) {
  auto mem = make_mem(128 * kMiB);
  auto b = sample_elf();
  put<uint64_t>(b, phdr_off(1) + kPPaddr, 200 * kMiB);  // second segment is bad
  expect_error(load_kernel_bytes(mem, b), "not inside guest RAM");
  EXPECT_EQ(read_guest(mem, 0x1000000, 0x300), std::vector<uint8_t>(0x300, 0));
}

TEST(ElfLoaderTest, RejectsBrokenPvhNotes) {
  auto mem = make_mem(128 * kMiB);
  {
    auto b = sample_elf({{"Xen", 18, {1, 0}}});  // 2-byte descriptor
    expect_error(load_kernel_bytes(mem, b), "descriptor");
  }
  {
    auto b = sample_elf({{"Xen", 18, xen_entry_desc(0x1000040)}});
    const size_t note_at = get<uint64_t>(b, phdr_off(0) + kPOffset);
    put<uint32_t>(b, note_at + 4, 0xfffffff0);  // descsz far past the segment
    expect_error(load_kernel_bytes(mem, b), "runs past");
  }
  {
    auto b = sample_elf({{"Xen", 18, xen_entry_desc(0x1000040)}});
    put<uint64_t>(b, phdr_off(0) + kPFilesz, b.size());  // note segment past EOF
    expect_error(load_kernel_bytes(mem, b), "PT_NOTE");
  }
  {
    auto b = sample_elf({{"Xen", 18, xen_entry_desc(0x800)}});  // entry not in the kernel
    expect_error(load_kernel_bytes(mem, b), "PVH entry point 0x800");
  }
}

TEST(KernelLoaderTest, RejectsImagesThatAreNoKernel) {
  auto mem = make_mem(128 * kMiB);
  expect_error(load_kernel_bytes(mem, {}), "not a kernel image");
  auto junk = pattern(4096, 5);
  expect_error(load_kernel_bytes(mem, junk),
               "not a kernel image (ELF, bzImage or PVH ELF expected)");
}

// ---- bzImage ----

constexpr uint64_t kSetupSects = 4;
constexpr uint64_t kSetupBytes = (kSetupSects + 1) * 512;

struct BzParams {
  uint16_t version = 0x020f;
  uint16_t xloadflags = 1;  // XLF_KERNEL_64
  uint8_t loadflags = 1;    // LOADED_HIGH
  uint8_t setup_sects = kSetupSects;
  uint32_t code32_start = 0x100000;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x800000;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t cmdline_size = 2047;
  size_t payload = 0x2345;
};

std::vector<uint8_t> make_bzimage(const BzParams& p = {}) {
  const size_t setup = (uint64_t{p.setup_sects ? p.setup_sects : 4u} + 1) * 512;
  std::vector<uint8_t> b = pattern(setup, 0x40);  // real-mode code stand-in
  put<uint8_t>(b, 0x1f1, p.setup_sects);
  put<uint32_t>(b, 0x1f4, static_cast<uint32_t>((p.payload + 15) / 16));  // syssize
  put<uint16_t>(b, 0x1fe, 0xaa55);
  put<uint8_t>(b, 0x200, 0xeb);
  put<uint8_t>(b, 0x201, 0x6a);  // header ends at 0x26c
  std::memcpy(b.data() + 0x202, "HdrS", 4);
  put<uint16_t>(b, 0x206, p.version);
  put<uint8_t>(b, 0x210, 0);
  put<uint8_t>(b, 0x211, p.loadflags);
  put<uint32_t>(b, 0x214, p.code32_start);
  put<uint32_t>(b, 0x218, 0);
  put<uint32_t>(b, 0x21c, 0);
  put<uint32_t>(b, 0x228, 0);
  put<uint32_t>(b, 0x22c, p.initrd_addr_max);
  put<uint32_t>(b, 0x230, 0x200000);
  put<uint8_t>(b, 0x234, 1);
  put<uint16_t>(b, 0x236, p.xloadflags);
  put<uint32_t>(b, 0x238, p.cmdline_size);
  put<uint64_t>(b, 0x250, 0);
  put<uint64_t>(b, 0x258, p.pref_address);
  put<uint32_t>(b, 0x260, p.init_size);
  auto payload = pattern(p.payload, 0x77);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

TEST(BzImageLoaderTest, LoadsProtectedModeKernelAtCode32Start) {
  auto mem = make_mem(128 * kMiB);
  auto image = make_bzimage();
  auto k = load_kernel_bytes(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->format, "bzimage");
  EXPECT_EQ(k->protocol, BootProtocol::Linux64);
  EXPECT_EQ(k->entry, 0x100200u);  // 64-bit entry: load address + 0x200
  EXPECT_EQ(k->load_start, 0x100000u);
  EXPECT_EQ(k->load_end, 0x1000000u + 0x800000u);  // pref_address + init_size
  EXPECT_EQ(k->initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(k->cmdline_max, 2047u);
  EXPECT_EQ(read_guest(mem, 0x100000, 0x2345), pattern(0x2345, 0x77));
  ASSERT_TRUE(k->setup_header.has_value());
  EXPECT_EQ(*k->setup_header, std::vector<uint8_t>(image.begin() + 0x1f1, image.begin() + 0x26c));
}

TEST(BzImageLoaderTest, ZeroSetupSectsMeansFour) {
  BzParams p;
  p.setup_sects = 0;
  auto mem = make_mem(128 * kMiB);
  auto k = load_kernel_bytes(mem, make_bzimage(p));
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(read_guest(mem, 0x100000, 0x2345), pattern(0x2345, 0x77));
}

TEST(BzImageLoaderTest, HeaderEndFollowsTheJumpOffset) {
  auto image = make_bzimage();
  image[0x201] = 0x66;  // header ends at 0x268 (a 2.12-2.14 kernel)
  auto mem = make_mem(128 * kMiB);
  auto k = load_kernel_bytes(mem, image);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->setup_header->size(), 0x268u - 0x1f1u);
}

TEST(BzImageLoaderTest, RejectsOldOrIncompatibleKernels) {
  auto mem = make_mem(128 * kMiB);
  {
    BzParams p;
    p.version = 0x0205;
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "2.05 is too old (2.06 or newer");
  }
  {
    BzParams p;
    p.version = 0x020b;  // 2.11: before xloadflags existed
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "XLF_KERNEL_64");
  }
  {
    BzParams p;
    p.xloadflags = 0;  // a 32-bit kernel
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "no 64-bit entry point");
  }
  {
    BzParams p;
    p.loadflags = 0;
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "not loaded high");
  }
  {
    BzParams p;
    p.code32_start = 0x10000;
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "code32_start");
  }
}

TEST(BzImageLoaderTest, RejectsTruncatedAndOversizedImages) {
  auto mem = make_mem(128 * kMiB);
  auto good = make_bzimage();
  {
    std::vector<uint8_t> b(good.begin(), good.begin() + 0x210);  // magic, but no full header
    expect_error(load_kernel_bytes(mem, b), "setup header is truncated");
  }
  {
    std::vector<uint8_t> b(good.begin(), good.begin() + kSetupBytes);  // setup only
    expect_error(load_kernel_bytes(mem, b), "truncated");
  }
  {
    std::vector<uint8_t> b(good.begin(), good.end() - 0x100);  // payload cut short
    expect_error(load_kernel_bytes(mem, b), "syssize");
  }
  {
    auto b = good;
    b[0x201] = 0x10;  // header claims to end at 0x212
    expect_error(load_kernel_bytes(mem, b), "ends at 0x212");
  }
  {
    auto small = make_mem(16 * kMiB);  // pref_address + init_size is beyond RAM
    expect_error(load_kernel_bytes(small, good), "needs guest RAM");
  }
  {
    BzParams p;
    p.pref_address = UINT64_MAX - 0x100;  // alignment and init_size would wrap
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "overflows");
  }
  {
    BzParams p;
    p.pref_address = 200 * kMiB;
    expect_error(load_kernel_bytes(mem, make_bzimage(p)), "needs guest RAM");
  }
}

// The Debian cloud kernel scripts/guest-assets.sh fetches, when it is there.
TEST(BzImageLoaderTest, RealDebianKernel) {
  const std::string path = test::source_dir() + "/assets/vmlinuz";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not fetched";
  auto mem = make_mem(256 * kMiB);
  auto k = load_kernel(mem, path);
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k->format, "bzimage");
  EXPECT_EQ(k->protocol, BootProtocol::Linux64);
  EXPECT_EQ(k->load_start, 0x100000u);
  EXPECT_EQ(k->entry, 0x100200u);
  EXPECT_GT(k->load_end, 0x1000000u);  // pref_address 16 MiB + init_size
  ASSERT_TRUE(k->setup_header.has_value());
  EXPECT_GE(get<uint16_t>(*k->setup_header, 0x206 - 0x1f1), 0x020c);
  EXPECT_GE(k->cmdline_max, 255u);
  auto initrd = initrd_address(mem, *k, 8 * kMiB);
  ASSERT_TRUE(initrd.ok()) << initrd.error().message;
  EXPECT_GE(*initrd, k->load_end);
}

// Random byte flips and truncations of valid images: every outcome is an error or a
// kernel whose entry lies inside what it loaded, never a crash (ASan builds check reads).
TEST(KernelLoaderTest, MutatedImagesFailCleanly) {
  auto mem = make_mem(64 * kMiB);
  const std::vector<std::vector<uint8_t>> seeds = {
      sample_elf({{"GNU", 3, pattern(20, 3)}, {"Xen", 18, xen_entry_desc(0x1000040)}}),
      make_bzimage()};
  std::mt19937_64 rng(1234);
  int ok = 0, failed = 0;
  for (const auto& seed : seeds) {
    for (int iter = 0; iter < 3000; ++iter) {
      auto b = seed;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        // Aim at the headers most of the time: that is where the offsets are.
        size_t limit = (rng() % 4) ? std::min<size_t>(b.size(), 0x270) : b.size();
        b[rng() % limit] = static_cast<uint8_t>(rng());
      }
      if (rng() % 5 == 0) b.resize(rng() % b.size());
      auto k = load_kernel_bytes(mem, b, rng() % 2);
      if (k.ok()) {
        ++ok;
        EXPECT_GE(k->entry, k->load_start);
        EXPECT_LT(k->entry, k->load_end);
        EXPECT_GE(k->load_start, kHighMemStart);
        EXPECT_LE(k->load_end, 64 * kMiB);
      } else {
        ++failed;
        EXPECT_FALSE(k.error().message.empty());
      }
    }
  }
  // Both outcomes must have happened, or the mutations were not exercising the parser.
  EXPECT_GT(ok, 0);
  EXPECT_GT(failed, 0);
}

TEST(KernelLoaderTest, EveryTruncationOfAnElfFails) {
  auto mem = make_mem(64 * kMiB);
  auto image = sample_elf({{"Xen", 18, xen_entry_desc(0x1000040)}});
  for (size_t n = 0; n < image.size(); ++n) {
    std::vector<uint8_t> b(image.begin(), image.begin() + n);
    EXPECT_FALSE(load_kernel_bytes(mem, b).ok()) << "truncated to " << n << " bytes";
  }
}

// ---- initrd ----

LoadedKernel elf_kernel_at(uint64_t start, uint64_t end) {
  LoadedKernel k{};
  k.protocol = BootProtocol::Linux64;
  k.entry = start;
  k.load_start = start;
  k.load_end = end;
  k.format = "elf";
  return k;
}

TEST(InitrdTest, GoesToTheTopOfLowRamPageAligned) {
  auto mem = make_mem(128 * kMiB);
  auto data = pattern(0x12345, 2);
  auto placed = load_initrd_bytes(mem, data, elf_kernel_at(0x1000000, 0x1400000));
  ASSERT_TRUE(placed.ok()) << placed.error().message;
  EXPECT_EQ(placed->addr, (128 * kMiB - 0x12345) & ~0xfffull);
  EXPECT_EQ(placed->size, 0x12345u);
  EXPECT_EQ(read_guest(mem, placed->addr, data.size()), data);
}

TEST(InitrdTest, StaysBelowTheMmioGapInLargeGuests) {
  for (uint64_t size : {4 * kGiB, 6 * kGiB}) {
    auto mem = make_mem(size);
    auto addr = initrd_address(mem, elf_kernel_at(0x1000000, 0x1400000), 0x3000);
    ASSERT_TRUE(addr.ok()) << addr.error().message;
    EXPECT_EQ(*addr, kMmioGapStart - 0x3000);
  }
}

TEST(InitrdTest, HonoursTheBzImageInitrdAddrMax) {
  auto mem = make_mem(4 * kGiB);
  BzParams p;
  p.initrd_addr_max = 0x37ffffff;
  auto k = load_kernel_bytes(mem, make_bzimage(p));
  ASSERT_TRUE(k.ok()) << k.error().message;
  auto addr = initrd_address(mem, *k, 0x1800);
  ASSERT_TRUE(addr.ok()) << addr.error().message;
  EXPECT_EQ(*addr, 0x38000000u - 0x2000u);  // highest page start with room for 0x1800 bytes
}

TEST(InitrdTest, RejectsInitrdsThatDoNotFit) {
  auto mem = make_mem(128 * kMiB);
  auto kernel = elf_kernel_at(0x1000000, 0x1400000);
  auto big = initrd_address(mem, kernel, 128 * kMiB);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("does not fit"), std::string::npos);
  // Fits in RAM but not above the kernel.
  auto over_kernel = initrd_address(mem, elf_kernel_at(0x1000000, 127 * kMiB), 2 * kMiB);
  EXPECT_FALSE(over_kernel.ok());
  EXPECT_FALSE(initrd_address(mem, kernel, 0).ok());
  EXPECT_FALSE(load_initrd(mem, "/nonexistent/initrd", kernel).ok());
}

TEST(InitrdTest, LoadsFromAFile) {
  auto data = pattern(0x5000, 9);
  char path[] = "/tmp/ignition-initrd-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
  auto mem = make_mem(128 * kMiB);
  auto placed = load_initrd(mem, path, elf_kernel_at(0x1000000, 0x1400000));
  unlink(path);
  ASSERT_TRUE(placed.ok()) << placed.error().message;
  EXPECT_EQ(placed->addr, 128 * kMiB - 0x5000);
  EXPECT_EQ(read_guest(mem, placed->addr, data.size()), data);
}

}  // namespace
}  // namespace ignition::x86_64
