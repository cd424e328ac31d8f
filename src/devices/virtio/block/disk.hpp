// The host file behind a virtio-blk drive: its size in sectors, what the file system can
// do (hole punching, zeroing ranges), and synchronous vectored I/O straight from guest
// memory into the file, so a completed write is in the host page cache.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition::devices::virtio::block {

class DiskFile {
 public:
  // Opens a regular file or block device; read_only opens it O_RDONLY.
  static Result<DiskFile> open(const std::string& path, bool read_only);

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  uint64_t size_bytes() const { return size_bytes_; }
  // Whole 512-byte sectors; a trailing partial sector is not visible to the guest.
  uint64_t capacity_sectors() const { return size_bytes_ / 512; }
  bool can_punch_hole() const { return punch_hole_; }
  bool can_zero_range() const { return zero_range_; }

  // Fills `iov` from the file at `offset` (or writes it there), retrying short transfers.
  Result<void> read(std::span<const iovec> iov, uint64_t offset) const;
  Result<void> write(std::span<const iovec> iov, uint64_t offset) const;
  // fdatasync: everything written so far reaches stable storage.
  Result<void> sync() const;
  // Deallocates [offset, offset+len); a no-op where the file system cannot.
  Result<void> discard(uint64_t offset, uint64_t len) const;
  // Makes [offset, offset+len) read as zeroes, deallocating it if `may_unmap` allows.
  Result<void> write_zeroes(uint64_t offset, uint64_t len, bool may_unmap) const;

 private:
  DiskFile(UniqueFd fd, std::string path, bool read_only, uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), read_only_(read_only), size_bytes_(size) {}
  void probe();

  UniqueFd fd_;
  std::string path_;
  bool read_only_;
  uint64_t size_bytes_;
  bool punch_hole_ = false;
  bool zero_range_ = false;
};

}  // namespace ignition::devices::virtio::block
