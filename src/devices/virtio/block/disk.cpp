#include "devices/virtio/block/disk.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <vector>

#include <spdlog/spdlog.h>

namespace ignition::devices::virtio::block {
namespace {

constexpr uint64_t kProbeLen = 4096;

// Runs preadv/pwritev until all of `iov` is transferred: the kernel may stop early
// (signals, the 2 GiB per-call cap) and takes at most IOV_MAX vectors per call.
template <typename Op>
Result<void> transfer_all(std::span<const iovec> iov, uint64_t offset, const char* what, Op op) {
  std::vector<iovec> rest(iov.begin(), iov.end());
  size_t first = 0;
  while (first < rest.size()) {
    if (rest[first].iov_len == 0) {
      ++first;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
    ssize_t n = op(rest.data() + first, count, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return err("{} at offset {}: {}", what, offset, errno_string());
    }
    if (n == 0) return err("{} at offset {}: unexpected end of file", what, offset);
    offset += static_cast<uint64_t>(n);
    size_t done = static_cast<size_t>(n);
    while (done > 0) {
      size_t step = std::min(done, rest[first].iov_len);
      rest[first].iov_base = static_cast<uint8_t*>(rest[first].iov_base) + step;
      rest[first].iov_len -= step;
      done -= step;
      if (rest[first].iov_len == 0) ++first;
    }
  }
  return {};
}

int fallocate_retry(int fd, int mode, uint64_t offset, uint64_t len) {
  int r;
  do {
    r = ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len));
  } while (r < 0 && errno == EINTR);
  return r;
}

}  // namespace

Result<DiskFile> DiskFile::open(const std::string& path, bool read_only) {
  UniqueFd fd(::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC));
  if (!fd.valid()) return err("open {}: {}", path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) < 0) return err("stat {}: {}", path, errno_string());
  if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
    return err("{} is neither a regular file nor a block device", path);
  // lseek gives the size of block devices too (st_size is 0 for them).
  off_t end = ::lseek(fd.get(), 0, SEEK_END);
  if (end < 0) return err("size of {}: {}", path, errno_string());
  uint64_t size = static_cast<uint64_t>(end);
  if (size % 512 != 0) {
    spdlog::warn(
        "disk {}: size {} is not a multiple of 512 bytes; the last {} bytes are not "
        "visible to the guest",
        path, size, size % 512);
  }
  DiskFile disk(std::move(fd), path, read_only, size);
  if (!read_only && S_ISREG(st.st_mode)) disk.probe();
  return disk;
}

void DiskFile::probe() {
  // Past the end of the file with KEEP_SIZE, so the probes change nothing the guest sees;
  // the zero-range probe may allocate there, and the hole punch gives it back.
  uint64_t at = (size_bytes_ + kProbeLen - 1) / kProbeLen * kProbeLen + kProbeLen;
  punch_hole_ =
      fallocate_retry(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, kProbeLen) == 0;
  zero_range_ =
      fallocate_retry(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, at, kProbeLen) == 0;
  if (zero_range_ && punch_hole_)
    fallocate_retry(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, at, kProbeLen);
}

Result<void> DiskFile::read(std::span<const iovec> iov, uint64_t offset) const {
  return transfer_all(iov, offset, "read", [this](const iovec* v, int n, off_t off) {
    return ::preadv(fd_.get(), v, n, off);
  });
}

Result<void> DiskFile::write(std::span<const iovec> iov, uint64_t offset) const {
  return transfer_all(iov, offset, "write", [this](const iovec* v, int n, off_t off) {
    return ::pwritev(fd_.get(), v, n, off);
  });
}

Result<void> DiskFile::sync() const {
  if (::fdatasync(fd_.get()) < 0) return err("fdatasync {}: {}", path_, errno_string());
  return {};
}

Result<void> DiskFile::discard(uint64_t offset, uint64_t len) const {
  if (!punch_hole_) return {};  // discard is a hint; ignoring it is allowed
  if (fallocate_retry(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) < 0)
    return err("discard {}+{}: {}", offset, len, errno_string());
  return {};
}

Result<void> DiskFile::write_zeroes(uint64_t offset, uint64_t len, bool may_unmap) const {
  if (may_unmap && punch_hole_) {
    if (fallocate_retry(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) == 0)
      return {};
  }
  if (zero_range_) {
    if (fallocate_retry(fd_.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len) == 0)
      return {};
  }
  if (punch_hole_) {
    if (fallocate_retry(fd_.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, len) == 0)
      return {};
  }
  // Neither works here (or it failed): write the zeroes out.
  static constexpr size_t kChunk = 64 * 1024;
  static const std::array<uint8_t, kChunk> kZeroes{};
  while (len > 0) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(len, kChunk));
    iovec v{const_cast<uint8_t*>(kZeroes.data()), n};
    IGN_TRY(write({&v, 1}, offset));
    offset += n;
    len -= n;
  }
  return {};
}

}  // namespace ignition::devices::virtio::block
