// The page-fault handler's side of the userfaultfd memory backend: resolves a restored
// guest's faults from its snapshot memory file, as Firecracker's example handlers do. A page
// with data in the file is copied in (UFFDIO_COPY); a hole in the file, and any page the VMM
// gave back (a remove event: the balloon), is mapped as zeros (UFFDIO_ZEROPAGE).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/uffd.hpp"

namespace ignition {

class UffdPager {
 public:
  struct Stats {
    uint64_t faults = 0;           // page-fault events
    uint64_t copied = 0;           // pages copied from the file
    uint64_t zeroed = 0;           // pages mapped as zeros: holes and removed pages
    uint64_t already_present = 0;  // faults an earlier copy had resolved already
    uint64_t removes = 0;          // remove events
  };

  // Serves the VMM that sent `handshake` from `memory_path`, whose size must be the sum of the
  // mappings' sizes and cover every mapping.
  static Result<UffdPager> create(const std::string& memory_path, UffdHandshake handshake);

  // Handles every event waiting on the userfaultfd, without waiting for more.
  Result<void> handle_events();
  // Handles events until `peer` (the handler's end of the handshake connection) says the VMM
  // closed it: the VMM is done with the memory, or gone.
  Result<void> serve_until_hangup(int peer);

  int uffd() const { return uffd_.get(); }
  const Stats& stats() const { return stats_; }

  UffdPager(UffdPager&& other) noexcept;
  UffdPager& operator=(UffdPager&&) = delete;
  UffdPager(const UffdPager&) = delete;
  UffdPager& operator=(const UffdPager&) = delete;
  ~UffdPager();

 private:
  UffdPager() = default;
  // Reads events until none is left: faults join pending_, removes are applied at once.
  Result<void> read_events();
  // The file page behind host address `page`, or an error outside every mapping.
  Result<uint64_t> file_page(uint64_t page) const;
  // False when the kernel asks to retry (EAGAIN: a remove event is waiting to be read).
  Result<bool> serve(uint64_t address);
  void mark_removed(uint64_t start, uint64_t end);

  std::vector<UffdMapping> mappings_;
  UniqueFd uffd_;
  uint64_t page_size_ = kUffdPageSize;  // every mapping's: 4 KiB, or 2 MiB (hugetlbfs)
  const uint8_t* file_ = nullptr;       // the memory file, mapped read-only
  uint64_t file_size_ = 0;
  // hugetlbfs has no UFFDIO_ZEROPAGE: zero 2 MiB pages are copied from here.
  const uint8_t* zeros_ = nullptr;
  std::vector<bool> has_data_;  // per file page: not a hole
  std::vector<bool> removed_;   // per file page: the VMM gave it back
  std::vector<uint64_t> pending_, retry_;
  Stats stats_;
};

}  // namespace ignition
