// VMGenID: fresh random IDs land at the device's address and nowhere else, notify raises
// the interrupt line, and the ID's page is one nothing else in the address map touches.
#include "devices/legacy/vmgenid.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <vector>

#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/mptable.hpp"

namespace ignition::devices {
namespace {

constexpr uint64_t kMemSize = 2 << 20;

GuestMemory make_memory() {
  auto mem = GuestMemory::create_anonymous({{0, kMemSize}});
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

IrqLine make_irq() {
  auto fd = EventFd::create();
  EXPECT_TRUE(fd.ok()) << fd.error().message;
  return IrqLine(std::move(fd).value(), x86_64::kVmGenIdIrq);
}

VmGenId make_device(uint64_t gpa = x86_64::kVmGenIdAddr) {
  auto dev = VmGenId::create(gpa, make_irq());
  EXPECT_TRUE(dev.ok()) << dev.error().message;
  return std::move(dev).value();
}

std::vector<uint8_t> read(const GuestMemory& mem, uint64_t gpa, size_t len) {
  std::vector<uint8_t> out(len);
  auto r = mem.read(gpa, out);
  EXPECT_TRUE(r.ok()) << r.error().message;
  return out;
}

TEST(VmGenId, RegenerateWritesSixteenRandomBytesAtTheAddress) {
  GuestMemory mem = make_memory();
  VmGenId dev = make_device();
  EXPECT_EQ(dev.address(), x86_64::kVmGenIdAddr);
  EXPECT_EQ(dev.gsi(), x86_64::kVmGenIdIrq);
  EXPECT_EQ(dev.id(), VmGenId::Id{}) << "no ID before the first regenerate";

  ASSERT_TRUE(dev.regenerate(mem).ok());
  const VmGenId::Id first = dev.id();
  EXPECT_NE(first, VmGenId::Id{});
  auto in_guest = read(mem, x86_64::kVmGenIdAddr, VmGenId::kIdSize);
  EXPECT_TRUE(std::equal(in_guest.begin(), in_guest.end(), first.begin()));

  // Only those 16 bytes: the rest of the page (and its neighbours) stay zero.
  auto page = read(mem, x86_64::kVmGenIdAddr - 0x1000, 0x3000);
  for (size_t i = 0; i < page.size(); ++i) {
    const bool inside = i >= 0x1000 && i < 0x1000 + VmGenId::kIdSize;
    if (inside) continue;
    ASSERT_EQ(page[i], 0) << "byte at " << std::hex << (x86_64::kVmGenIdAddr - 0x1000 + i);
  }

  ASSERT_TRUE(dev.regenerate(mem).ok());
  EXPECT_NE(dev.id(), first);
  in_guest = read(mem, x86_64::kVmGenIdAddr, VmGenId::kIdSize);
  EXPECT_TRUE(std::equal(in_guest.begin(), in_guest.end(), dev.id().begin()));
}

TEST(VmGenId, IdsLookRandom) {
  GuestMemory mem = make_memory();
  VmGenId dev = make_device();
  std::set<VmGenId::Id> seen;
  size_t ones = 0;
  constexpr int kRounds = 256;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(dev.regenerate(mem).ok());
    seen.insert(dev.id());
    for (uint8_t b : dev.id()) ones += static_cast<size_t>(__builtin_popcount(b));
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(kRounds));
  // 32768 fair bits: the mean is 16384, the standard deviation about 90.
  EXPECT_GT(ones, 16384u - 1000u);
  EXPECT_LT(ones, 16384u + 1000u);
}

TEST(VmGenId, TwoDevicesDiffer) {
  // Stands in for two clones of one snapshot: each restore builds its own device.
  GuestMemory a = make_memory();
  GuestMemory b = make_memory();
  VmGenId da = make_device();
  VmGenId db = make_device();
  ASSERT_TRUE(da.regenerate(a).ok());
  ASSERT_TRUE(db.regenerate(b).ok());
  EXPECT_NE(read(a, x86_64::kVmGenIdAddr, 16), read(b, x86_64::kVmGenIdAddr, 16));
}

TEST(VmGenId, NotifyRaisesTheLine) {
  auto fd = EventFd::create();
  ASSERT_TRUE(fd.ok());
  const int raw = fd->fd();
  auto dev = VmGenId::create(x86_64::kVmGenIdAddr, IrqLine(std::move(fd).value(), 9));
  ASSERT_TRUE(dev.ok());
  uint64_t count = 0;
  EXPECT_LT(::read(raw, &count, sizeof(count)), 0) << "nothing raised yet";
  dev->notify();
  ASSERT_EQ(::read(raw, &count, sizeof(count)), static_cast<ssize_t>(sizeof(count)));
  EXPECT_EQ(count, 1u);
}

TEST(VmGenId, Errors) {
  EXPECT_FALSE(VmGenId::create(x86_64::kVmGenIdAddr + 4, make_irq()).ok()) << "unaligned";

  GuestMemory mem = make_memory();
  VmGenId outside = make_device(kMemSize - 8);  // the ID would run past the end of RAM
  auto r = outside.regenerate(mem);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("VMGenID"), std::string::npos) << r.error().message;
  EXPECT_EQ(outside.id(), VmGenId::Id{}) << "a failed write keeps the old ID";
}

TEST(VmGenIdLayout, TheIdPageIsReservedAndFree) {
  using namespace x86_64;
  static_assert(kVmGenIdAddr % 0x1000 == 0);
  // Reserved in the e820 map, so the guest never allocates it.
  GuestMemory mem = make_memory();
  bool reserved = false;
  for (const E820Range& e : e820_map(mem)) {
    const bool covers = e.addr <= kVmGenIdAddr && kVmGenIdAddr + 0x1000 <= e.addr + e.size;
    if (covers) reserved = e.type == kE820Reserved;
    const bool overlaps = e.addr < kVmGenIdAddr + 0x1000 && kVmGenIdAddr < e.addr + e.size;
    if (overlaps && e.type == kE820Ram) ADD_FAILURE() << "RAM entry at " << std::hex << e.addr;
  }
  EXPECT_TRUE(reserved);
  // Nothing the VMM writes there: the largest MP table ends below it, the RSDP and ACPI
  // tables start above it, kernels and initrds load from 1 MiB up.
  EXPECT_LE(kMptableAddr + mptable_size(kMptableMaxVcpus), kVmGenIdAddr);
  EXPECT_GE(kRsdpAddr, kVmGenIdAddr + 0x1000);
  EXPECT_GE(kAcpiTablesAddr, kVmGenIdAddr + 0x1000);
  EXPECT_GE(kHighMemStart, kVmGenIdAddr + 0x1000);
  EXPECT_GE(kVmGenIdAddr, kCmdlineAddr + kCmdlineMaxSize);
  // Its GSI is an IOAPIC pin neither COM1 nor a virtio device starts on.
  EXPECT_LT(kVmGenIdIrq, kIoapicPins);
  EXPECT_NE(kVmGenIdIrq, kSerialCom1Irq);
  EXPECT_GT(kVmGenIdIrq, kVirtioIrqBase);
}

}  // namespace
}  // namespace ignition::devices
