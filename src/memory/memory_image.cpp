#include "memory/memory_image.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <utility>

namespace ignition {

namespace {
constexpr uint64_t kPageSize = 4096;
}

Result<MemoryImage> MemoryImage::capture(const GuestMemory& memory) {
  UniqueFd fd(::memfd_create("ignition-checkpoint", MFD_CLOEXEC));
  if (!fd.valid()) return err("checkpoint memory: memfd_create: {}", errno_string());
  const uint64_t size = memory.total_size();
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
    return err("checkpoint memory: ftruncate: {}", errno_string());
  // The same writer as a snapshot's memory file, into the memfd: holes stay holes.
  auto saved = memory.save_to(fd.get());
  if (!saved.ok()) return context(saved.error(), "checkpoint memory");
  void* base = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) return err("checkpoint memory: mmap: {}", errno_string());
  return MemoryImage(std::move(fd), static_cast<const uint8_t*>(base), size);
}

void MemoryImage::restore_pages(GuestMemory& memory, const DirtyBitmap& pages) const {
  for (const auto& r : memory.regions()) {
    const uint64_t first = r.file_offset / kPageSize, end = first + r.size / kPageSize;
    pages.for_each([&](uint64_t page) {
      if (page < first || page >= end) return;
      const uint64_t off = (page - first) * kPageSize;
      std::memcpy(r.host + off, base_ + r.file_offset + off, kPageSize);
    });
  }
}

MemoryImage::MemoryImage(MemoryImage&& other) noexcept
    : fd_(std::move(other.fd_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MemoryImage& MemoryImage::operator=(MemoryImage&& other) noexcept {
  if (this != &other) {
    if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
    fd_ = std::move(other.fd_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MemoryImage::~MemoryImage() {
  if (base_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

}  // namespace ignition
