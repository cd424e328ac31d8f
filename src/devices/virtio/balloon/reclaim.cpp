#include "devices/virtio/balloon/reclaim.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <algorithm>
#include <vector>

namespace ignition::devices::virtio {

namespace {

constexpr uint64_t kPageSize = 4096;

struct Piece {
  const MemoryRegion* region;
  uint64_t offset;  // within the region
  uint64_t len;
};

// Splits [gpa, gpa+len) by region; an error if any byte is outside guest RAM.
Result<std::vector<Piece>> split(const GuestMemory& mem, uint64_t gpa, uint64_t len) {
  if (gpa + len < gpa) return err("range {:#x}+{:#x} wraps", gpa, len);
  std::vector<Piece> pieces;
  uint64_t done = 0;
  while (done < len) {
    uint64_t at = gpa + done;
    auto r = std::find_if(mem.regions().begin(), mem.regions().end(),
                          [at](const auto& r) { return at >= r.gpa && at - r.gpa < r.size; });
    if (r == mem.regions().end()) return err("range {:#x}+{:#x} is outside guest RAM", gpa, len);
    uint64_t offset = at - r->gpa;
    uint64_t n = std::min(len - done, r->size - offset);
    pieces.push_back({&*r, offset, n});
    done += n;
  }
  return pieces;
}

}  // namespace

Result<void> discard_guest_ram(GuestMemory& mem, uint64_t gpa, uint64_t len) {
  if (gpa % kPageSize != 0 || len % kPageSize != 0)
    return err("range {:#x}+{:#x} is not page-aligned", gpa, len);
  IGN_ASSIGN_OR_RETURN(auto pieces, split(mem, gpa, len));
  // Private anonymous RAM (a Uffd restore) has no file: madvise alone frees it, and the
  // page-fault handler hears of it (a remove event).
  bool punch = false;
  if (mem.fd() >= 0) {
    struct stat st {};
    if (::fstat(mem.fd(), &st) != 0) return err("fstat guest memory: {}", errno_string());
    punch = st.st_nlink == 0;
  }
  // RAM on 2 MiB hugetlbfs pages goes back in whole huge pages only: the part of the range
  // that covers some (usually none when the guest gives back 4 KiB pages; free page reports
  // are often whole 2 or 4 MiB). Firecracker never reclaims huge pages.
  const uint64_t unit = mem.backing_page_size();
  for (const Piece& p : pieces) {
    const uint64_t from = p.region->file_offset + p.offset;
    const uint64_t start = (from + unit - 1) / unit * unit, end = (from + p.len) / unit * unit;
    if (start >= end) continue;
    uint8_t* host = p.region->host + p.offset + (start - from);
    if (punch && ::fallocate(mem.fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                             static_cast<off_t>(start), static_cast<off_t>(end - start)) != 0)
      return err("punching {:#x}+{:#x} out of guest memory: {}", gpa, len, errno_string());
    if (::madvise(host, end - start, MADV_DONTNEED) != 0)
      return err("madvise {:#x}+{:#x}: {}", gpa, len, errno_string());
  }
  return {};
}

}  // namespace ignition::devices::virtio
