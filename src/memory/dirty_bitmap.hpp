// One bit per 4 KiB page of guest RAM, indexed by the page's offset in the memory file,
// so every region shares one bitmap. Diff snapshots and in-process resets work from it.
#pragma once

#include <bit>
#include <cstdint>
#include <span>
#include <vector>

namespace ignition {

class DirtyBitmap {
 public:
  explicit DirtyBitmap(uint64_t pages = 0) : words_((pages + 63) / 64), pages_(pages) {}

  uint64_t pages() const { return pages_; }
  std::span<uint64_t> words() { return words_; }
  std::span<const uint64_t> words() const { return words_; }

  void set(uint64_t page) { words_[page / 64] |= 1ULL << (page % 64); }
  bool test(uint64_t page) const { return words_[page / 64] >> (page % 64) & 1; }
  void clear() { std::fill(words_.begin(), words_.end(), 0); }
  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t w : words_) n += static_cast<uint64_t>(std::popcount(w));
    return n;
  }

  // ORs in `count` bits of `bits` (bit 0 of bits[0] first) as pages first_page onwards.
  void merge(uint64_t first_page, std::span<const uint64_t> bits, uint64_t count) {
    if (first_page % 64 == 0) {
      for (uint64_t i = 0; i < (count + 63) / 64; ++i) words_[first_page / 64 + i] |= bits[i];
      return;
    }
    for (uint64_t i = 0; i < count; ++i)
      if (bits[i / 64] >> (i % 64) & 1) set(first_page + i);
  }

  // Calls fn(page) for every set page, in order; visits words, not pages.
  template <typename Fn>
  void for_each(Fn&& fn) const {
    for (uint64_t w = 0; w < words_.size(); ++w)
      for (uint64_t bits = words_[w]; bits != 0; bits &= bits - 1)
        fn(w * 64 + static_cast<uint64_t>(std::countr_zero(bits)));
  }

 private:
  std::vector<uint64_t> words_;
  uint64_t pages_ = 0;
};

}  // namespace ignition
