// A frozen copy of guest RAM inside the VMM process: what an in-process reset copies
// dirtied pages back from. It lives in its own memfd, so pages the guest never touched
// stay holes and cost nothing.
#pragma once

#include <cstdint>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition {

class MemoryImage {
 public:
  // Copies all of `memory` (skipping never-allocated memfd ranges and all-zero pages).
  static Result<MemoryImage> capture(const GuestMemory& memory);

  // Copies the pages in `pages` from the image back into `memory` (the same layout the
  // image was captured from). Allocates nothing.
  void restore_pages(GuestMemory& memory, const DirtyBitmap& pages) const;

  MemoryImage(MemoryImage&& other) noexcept;
  MemoryImage& operator=(MemoryImage&& other) noexcept;
  MemoryImage(const MemoryImage&) = delete;
  MemoryImage& operator=(const MemoryImage&) = delete;
  ~MemoryImage();

 private:
  MemoryImage(UniqueFd fd, const uint8_t* base, uint64_t size)
      : fd_(std::move(fd)), base_(base), size_(size) {}
  UniqueFd fd_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace ignition
