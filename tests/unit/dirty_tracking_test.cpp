// Dirty pages from device writes, diff memory files and their layering, and the in-process
// memory image a reset copies back from.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>

#include "memory/dirty_bitmap.hpp"
#include "memory/guest_memory.hpp"
#include "memory/memory_image.hpp"

namespace ignition {
namespace {

constexpr uint64_t kPage = 4096;

GuestMemory two_regions() {
  // A gap between the regions, as the x86 MMIO hole makes; file offsets are contiguous.
  auto m = GuestMemory::create_anonymous({{0, 64 * kPage}, {1ULL << 32, 64 * kPage}});
  EXPECT_TRUE(m.ok());
  return std::move(m).value();
}

std::string temp(const std::string& name) {
  return ::testing::TempDir() + "ign-dirty-" + std::to_string(::getpid()) + "-" + name;
}

TEST(DirtyBitmap, MergeAndVisit) {
  DirtyBitmap b(200);
  std::vector<uint64_t> log = {0b1011, 1ULL << 63};
  b.merge(64, log, 128);
  b.merge(3, std::vector<uint64_t>{0b1}, 1);  // unaligned start
  std::vector<uint64_t> seen;
  b.for_each([&](uint64_t p) { seen.push_back(p); });
  EXPECT_EQ(seen, (std::vector<uint64_t>{3, 64, 65, 67, 191}));
  EXPECT_EQ(b.count(), 5u);
  b.clear();
  EXPECT_EQ(b.count(), 0u);
}

TEST(GuestMemoryDirty, DeviceWritesAreTrackedOnlyOnceEnabled) {
  auto m = two_regions();
  ASSERT_TRUE(m.write_obj<uint32_t>(5 * kPage, 1).ok());  // before tracking: not recorded
  m.track_writes();
  ASSERT_TRUE(m.write_obj<uint32_t>(2 * kPage + 10, 1).ok());
  ASSERT_TRUE(m.fill((1ULL << 32) + kPage - 1, 0xaa, 2).ok());  // straddles two pages
  ASSERT_TRUE(m.slice(7 * kPage, 16).ok());                     // a mutable view counts
  DirtyBitmap got(m.page_count());
  m.take_written(got);
  std::vector<uint64_t> pages;
  got.for_each([&](uint64_t p) { pages.push_back(p); });
  // The second region's pages follow the first's 64 in the bitmap (file order).
  EXPECT_EQ(pages, (std::vector<uint64_t>{2, 7, 64, 65}));
  DirtyBitmap again(m.page_count());
  m.take_written(again);
  EXPECT_EQ(again.count(), 0u) << "take_written forgets what it returned";
}

TEST(GuestMemoryDirty, DiffFilesLayerOverTheirBase) {
  auto m = two_regions();
  for (uint64_t p = 0; p < 64; ++p) ASSERT_TRUE(m.write_obj<uint64_t>(p * kPage, p + 1).ok());
  std::string base = temp("base"), diff = temp("diff");
  ASSERT_TRUE(m.save(base).ok());
  ASSERT_TRUE(m.write_obj<uint64_t>(3 * kPage, 0).ok());  // zeroed: must survive as data
  ASSERT_TRUE(m.write_obj<uint64_t>((1ULL << 32) + 8, 99).ok());
  DirtyBitmap dirty(m.page_count());
  dirty.set(3);
  dirty.set(64);
  ASSERT_TRUE(m.save_pages(diff, dirty).ok());

  std::vector<GuestMemory::Range> ranges = {{0, 64 * kPage}, {1ULL << 32, 64 * kPage}};
  auto restored = GuestMemory::map_file_private(base, ranges);
  ASSERT_TRUE(restored.ok());
  ASSERT_TRUE(restored->apply_diff(diff).ok());
  EXPECT_EQ(*restored->read_obj<uint64_t>(3 * kPage), 0u);
  EXPECT_EQ(*restored->read_obj<uint64_t>(4 * kPage), 5u);
  EXPECT_EQ(*restored->read_obj<uint64_t>((1ULL << 32) + 8), 99u);

  // A diff of another size belongs to another VM.
  std::filesystem::resize_file(diff, 4 * kPage);
  auto wrong = restored->apply_diff(diff);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("bytes"), std::string::npos) << wrong.error().message;
  std::filesystem::remove(base);
  std::filesystem::remove(diff);
}

TEST(MemoryImage, RestoresOnlyTheGivenPages) {
  auto m = two_regions();
  ASSERT_TRUE(m.write_obj<uint64_t>(1 * kPage, 11).ok());
  ASSERT_TRUE(m.write_obj<uint64_t>((1ULL << 32) + kPage, 22).ok());
  auto image = MemoryImage::capture(m);
  ASSERT_TRUE(image.ok()) << image.error().message;
  ASSERT_TRUE(m.write_obj<uint64_t>(1 * kPage, 0xbad).ok());
  ASSERT_TRUE(m.write_obj<uint64_t>((1ULL << 32) + kPage, 0xbad).ok());
  ASSERT_TRUE(m.write_obj<uint64_t>(9 * kPage, 0xbad).ok());
  DirtyBitmap pages(m.page_count());
  pages.set(1);
  pages.set(65);
  image->restore_pages(m, pages);
  EXPECT_EQ(*m.read_obj<uint64_t>(1 * kPage), 11u);
  EXPECT_EQ(*m.read_obj<uint64_t>((1ULL << 32) + kPage), 22u);
  EXPECT_EQ(*m.read_obj<uint64_t>(9 * kPage), 0xbadu) << "pages not named stay as they are";
}

}  // namespace
}  // namespace ignition
