// Guest RAM: one memfd (or snapshot file) mapped into the VMM, split into regions at
// guest-physical addresses. Every access from guest-controlled addresses goes through
// the bounds-checked accessors here, so a wild address becomes an error, not a crash.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/dirty_bitmap.hpp"

namespace ignition {

struct MemoryRegion {
  uint64_t gpa;          // guest-physical start
  uint64_t size;         // bytes, page-aligned
  uint64_t file_offset;  // offset of this region in the backing file
  uint8_t* host;         // where the VMM sees it
};

class GuestMemory {
 public:
  // A fresh anonymous guest of `regions` (gpa, size) backed by one memfd.
  struct Range {
    uint64_t gpa;
    uint64_t size;
  };
  // The pages behind guest RAM (machine-config huge_pages): 4 KiB; 4 KiB with
  // madvise(MADV_HUGEPAGE) so the kernel may use transparent huge pages; or 2 MiB
  // hugetlbfs pages, all reserved from the host's pool when the memory is created.
  enum class Pages { kSmall, kTransparent, kHuge2M };
  static constexpr uint64_t kHugePageSize = 2ull << 20;
  static Result<GuestMemory> create_anonymous(const std::vector<Range>& ranges,
                                              Pages pages = Pages::kSmall);
  // Guest RAM from a snapshot's memory file, mapped copy-on-write (MAP_PRIVATE): the
  // file is never written, and this guest holds privately only the pages it dirties.
  // The file's size must equal the sum of the ranges.
  static Result<GuestMemory> map_file_private(const std::string& path,
                                              const std::vector<Range>& ranges);
  // Guest RAM with nothing behind it yet: private anonymous memory, for a restore whose
  // pages a userfaultfd handler fills in from the snapshot (Firecracker's Uffd backend).
  // There is no file: fd() is -1.
  // With Pages::kHuge2M: 2 MiB hugetlbfs pages, reserved now (a Uffd restore of a 2M
  // snapshot); kTransparent is the caller's advise_huge_pages().
  static Result<GuestMemory> create_private_anonymous(const std::vector<Range>& ranges,
                                                      Pages pages = Pages::kSmall);
  // Keeps `fd` open exactly as long as this memory is mapped: the userfaultfd its pages
  // are served through, and the connection whose end tells the handler the VMM is done.
  void hold(UniqueFd fd);

  // Writes all of RAM to `path` (regions back to back, as file offsets say), leaving
  // holes for pages that are all zeros, through a temporary file renamed into place.
  Result<void> save(const std::string& path) const;
  // The same into `fd`, a file already of total_size() bytes.
  Result<void> save_to(int fd) const;
  // A diff: only the pages in `pages`, each written (zeros too) at its offset in a
  // sparse file of the full size; every other page is a hole.
  Result<void> save_pages(const std::string& path, const DirtyBitmap& pages) const;
  // Copies every data extent of the diff file `path` (save_pages) over RAM, privately.
  Result<void> apply_diff(const std::string& path);

  uint64_t page_count() const { return total_size_ / 4096; }
  // The size of the pages behind RAM, the unit in which it can be given back to the host:
  // 4 KiB, or 2 MiB with hugetlbfs pages.
  uint64_t backing_page_size() const { return backing_page_size_; }
  // Asks for transparent huge pages over all of RAM (MADV_HUGEPAGE).
  Result<void> advise_huge_pages();
  // Device writes: from now on every write through this object (write, fill, write_obj, a
  // mutable slice) marks its pages, as KVM's dirty log marks the guest's own writes.
  void track_writes();
  // ORs the pages written since the last call into `into` and forgets them.
  void take_written(DirtyBitmap& into);
  // True when RAM is a private copy-on-write view of a snapshot: its file mapped MAP_PRIVATE,
  // or anonymous memory a userfaultfd handler fills from it.
  bool copy_on_write() const { return copy_on_write_; }

  GuestMemory(GuestMemory&& other) noexcept;
  GuestMemory& operator=(GuestMemory&& other) noexcept;
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;
  ~GuestMemory();

  const std::vector<MemoryRegion>& regions() const { return regions_; }
  int fd() const { return fd_.get(); }
  uint64_t total_size() const { return total_size_; }
  // One past the highest guest-physical RAM address.
  uint64_t end_gpa() const;

  // True when [gpa, gpa+len) lies wholly inside one region.
  bool contains(uint64_t gpa, uint64_t len) const;

  // Host view of [gpa, gpa+len) when it lies inside one region; an error otherwise
  // (including length overflow). The span stays valid as long as this object lives.
  Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len);
  Result<std::span<const uint8_t>> slice(uint64_t gpa, uint64_t len) const;

  // Copies that may span regions that are contiguous in guest-physical space.
  Result<void> read(uint64_t gpa, std::span<uint8_t> out) const;
  Result<void> write(uint64_t gpa, std::span<const uint8_t> in);
  Result<void> fill(uint64_t gpa, uint8_t value, uint64_t len);

  template <typename T>
  Result<T> read_obj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    T value;
    IGN_TRY(read(gpa, {reinterpret_cast<uint8_t*>(&value), sizeof(T)}));
    return value;
  }
  template <typename T>
  Result<void> write_obj(uint64_t gpa, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, {reinterpret_cast<const uint8_t*>(&value), sizeof(T)});
  }

 private:
  GuestMemory(UniqueFd fd, uint8_t* base, uint64_t total, std::vector<MemoryRegion> regions,
              bool copy_on_write = false)
      : fd_(std::move(fd)),
        base_(base),
        total_size_(total),
        regions_(std::move(regions)),
        copy_on_write_(copy_on_write) {}
  // `reserve`: commit the memory now (mmap fails if it cannot be had) instead of page by page.
  static Result<GuestMemory> map(UniqueFd fd, const std::vector<Range>& ranges, uint64_t total,
                                 bool copy_on_write, bool reserve = false);
  static Result<GuestMemory> create_huge(const std::vector<Range>& ranges, uint64_t total);
  static Result<GuestMemory> adopt(UniqueFd fd, uint8_t* base, uint64_t total,
                                   const std::vector<Range>& ranges, bool copy_on_write);
  const MemoryRegion* find(uint64_t gpa) const;
  void mark_written(const uint8_t* host, uint64_t len);

  UniqueFd fd_;
  uint8_t* base_ = nullptr;  // one mapping of the whole file
  uint64_t total_size_ = 0;
  std::vector<MemoryRegion> regions_;
  bool copy_on_write_ = false;
  uint64_t backing_page_size_ = 4096;
  // One bit per page, set by device writes once track_writes() was called; written by
  // the device thread and vCPU threads (MMIO handlers), taken on the event loop.
  std::unique_ptr<std::atomic<uint64_t>[]> written_;
  // Closed after the mapping is gone (see hold()).
  std::vector<UniqueFd> held_;
};

}  // namespace ignition
