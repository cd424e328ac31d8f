// Where pmem regions go: after RAM, 2 MiB aligned, below the MMIO gap when they fit there,
// else above 4 GiB after any RAM there; and the check that a region overlaps nothing.
#include <gtest/gtest.h>

#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20, kGiB = 1ull << 30;

TEST(PmemLayout, RegionsFollowRamBelowTheGapWhenTheyFit) {
  EXPECT_EQ(pmem_base(128 * kMiB, 4 * kMiB), 128 * kMiB);
  EXPECT_EQ(pmem_base(129 * kMiB, 4 * kMiB), 130 * kMiB) << "rounded up to 2 MiB";
  EXPECT_TRUE(pmem_region_fits(128 * kMiB, 4 * kMiB, 128 * kMiB));
}

TEST(PmemLayout, RegionsThatDoNotFitBelowTheGapGoAbove4GiB) {
  // 3 GiB of RAM leaves 256 MiB below the gap: 512 MiB of pmem goes to 4 GiB.
  EXPECT_EQ(pmem_base(3 * kGiB, 512 * kMiB), kMmioGapEnd);
  // RAM past the gap: pmem after its last byte.
  EXPECT_EQ(pmem_base(4 * kGiB, 2 * kMiB), kMmioGapEnd + 4 * kGiB - kMmioGapStart);
  EXPECT_TRUE(pmem_region_fits(pmem_base(4 * kGiB, 2 * kMiB), 2 * kMiB, 4 * kGiB));
}

TEST(PmemLayout, OverlapsWithRamOrTheGapAreRefused) {
  EXPECT_FALSE(pmem_region_fits(64 * kMiB, 4 * kMiB, 128 * kMiB)) << "inside RAM";
  EXPECT_FALSE(pmem_region_fits(kMmioGapStart - 2 * kMiB, 4 * kMiB, 128 * kMiB))
      << "into the MMIO gap";
  EXPECT_FALSE(pmem_region_fits(kMmioGapEnd, 2 * kMiB, 4 * kGiB)) << "onto RAM above 4 GiB";
  EXPECT_FALSE(pmem_region_fits(~0ull - kMiB, 4 * kMiB, 128 * kMiB)) << "wrapping";
}

}  // namespace
}  // namespace ignition::x86_64
