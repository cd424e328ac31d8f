// Read-only access to a boot image (kernel or initrd) that may come from a file or from
// bytes in memory. Every read is bounds-checked against the image size, so a header field
// that points past the end becomes an error instead of a wild read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64::boot {

class ImageSource {
 public:
  // Borrows `bytes`; they must outlive the source.
  static ImageSource from_bytes(std::span<const uint8_t> bytes);
  // Opens a regular file. Reads use pread, so a file that shrinks underneath us gives
  // an error, never SIGBUS (which an mmap of the file would).
  static Result<ImageSource> open(const std::string& path);

  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  // Fills `out` from [offset, offset + out.size()); an error if that is not inside the image.
  Result<void> read(uint64_t offset, std::span<uint8_t> out) const;
  // Copies [offset, offset + len) of the image into guest memory at `gpa`, straight into
  // the guest mapping (kernels and initrds are tens of MiB; no bounce buffer).
  Result<void> copy_to_guest(GuestMemory& mem, uint64_t gpa, uint64_t offset, uint64_t len) const;

  template <typename T>
  Result<T> read_obj(uint64_t offset) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    IGN_TRY(read(offset, {reinterpret_cast<uint8_t*>(&value), sizeof(T)}));
    return value;
  }

 private:
  ImageSource() = default;

  std::string name_;
  uint64_t size_ = 0;
  std::span<const uint8_t> bytes_;  // when built from bytes
  UniqueFd fd_;                     // when opened from a file
};

}  // namespace ignition::x86_64::boot
