#include "memory/guest_memory.hpp"

#include <gtest/gtest.h>

#include "arch/x86_64/layout.hpp"

namespace ignition {
namespace {

GuestMemory two_regions() {
  // 1 MiB at 0 and 1 MiB at 4 GiB: a hole between them, as around the MMIO gap.
  auto mem = GuestMemory::create_anonymous({{0, 1 << 20}, {1ULL << 32, 1 << 20}});
  EXPECT_TRUE(mem.ok());
  return std::move(mem).value();
}

TEST(GuestMemory, ReadsBackWhatWasWritten) {
  auto mem = two_regions();
  ASSERT_TRUE(mem.write_obj<uint64_t>(0x1000, 0x1122334455667788).ok());
  auto value = mem.read_obj<uint64_t>(0x1000);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(*value, 0x1122334455667788u);
  ASSERT_TRUE(mem.write_obj<uint32_t>((1ULL << 32) + 8, 0xdeadbeef).ok());
  EXPECT_EQ(*mem.read_obj<uint32_t>((1ULL << 32) + 8), 0xdeadbeefu);
}

TEST(GuestMemory, RejectsAddressesOutsideRam) {
  auto mem = two_regions();
  uint8_t buf[16] = {};
  EXPECT_FALSE(mem.read(1 << 20, buf).ok());        // in the hole
  EXPECT_FALSE(mem.read((1 << 20) - 8, buf).ok());  // straddles the end
  EXPECT_FALSE(mem.write(~0ULL - 4, buf).ok());     // wraps around
  EXPECT_FALSE(mem.slice(0, (1 << 20) + 1).ok());   // longer than the region
  EXPECT_FALSE(mem.slice(0x1000, ~0ULL).ok());      // length overflow
  EXPECT_FALSE(mem.fill((1ULL << 32) + (1 << 20), 0, 1).ok());
  EXPECT_TRUE(mem.slice((1 << 20) - 16, 16).ok());
}

TEST(GuestMemory, SpansContiguousRegions) {
  auto mem = GuestMemory::create_anonymous({{0, 0x2000}, {0x2000, 0x2000}});
  ASSERT_TRUE(mem.ok());
  std::vector<uint8_t> data(0x100, 0xab);
  ASSERT_TRUE(mem->write(0x1f80, data).ok());
  std::vector<uint8_t> back(0x100);
  ASSERT_TRUE(mem->read(0x1f80, back).ok());
  EXPECT_EQ(back, data);
  EXPECT_FALSE(mem->slice(0x1f80, 0x100).ok()) << "a slice must lie inside one region";
}

TEST(GuestMemory, RejectsBadLayouts) {
  EXPECT_FALSE(GuestMemory::create_anonymous({}).ok());
  EXPECT_FALSE(GuestMemory::create_anonymous({{0, 100}}).ok());
  EXPECT_FALSE(GuestMemory::create_anonymous({{0, 0x2000}, {0x1000, 0x1000}}).ok());
}

TEST(GuestMemory, IsBackedByOneSharedFile) {
  auto mem = two_regions();
  EXPECT_GE(mem.fd(), 0);
  EXPECT_EQ(mem.total_size(), 2u << 20);
  EXPECT_EQ(mem.regions()[1].file_offset, 1u << 20);
  EXPECT_EQ(mem.end_gpa(), (1ULL << 32) + (1 << 20));
}

TEST(RamLayout, SplitsAroundTheMmioGap) {
  auto small = x86_64::ram_ranges(128 << 20);
  ASSERT_EQ(small.size(), 1u);
  EXPECT_EQ(small[0].size, 128u << 20);
  auto large = x86_64::ram_ranges(6ULL << 30);
  ASSERT_EQ(large.size(), 2u);
  EXPECT_EQ(large[0].gpa + large[0].size, x86_64::kMmioGapStart);
  EXPECT_EQ(large[1].gpa, x86_64::kMmioGapEnd);
  EXPECT_EQ(large[0].size + large[1].size, 6ULL << 30);
}

}  // namespace
}  // namespace ignition
