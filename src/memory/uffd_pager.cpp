#include "memory/uffd_pager.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

namespace ignition {

Result<UffdPager> UffdPager::create(const std::string& memory_path, UffdHandshake handshake) {
  UffdPager pager;
  pager.mappings_ = std::move(handshake.mappings);
  pager.uffd_ = std::move(handshake.uffd);
  if (pager.mappings_.empty()) return err("uffd handler: no mappings");
  // Polling a blocking userfaultfd only ever reports an error.
  int flags = ::fcntl(pager.uffd_.get(), F_GETFL);
  if (flags < 0 || ::fcntl(pager.uffd_.get(), F_SETFL, flags | O_NONBLOCK) != 0)
    return err("uffd handler: the descriptor received is not usable: {}", errno_string());
  uint64_t total = 0;
  pager.page_size_ = pager.mappings_.front().page_size;
  for (const auto& m : pager.mappings_) {
    // One page size keeps the bookkeeping per page simple; it is all the VMM uses.
    if (m.page_size != kUffdPageSize && m.page_size != kUffdHugePageSize)
      return err("uffd handler: page size {} is not supported (only {} and {})", m.page_size,
                 kUffdPageSize, kUffdHugePageSize);
    if (m.page_size != pager.page_size_)
      return err("uffd handler: mappings with different page sizes ({} and {})", pager.page_size_,
                 m.page_size);
    total += m.size;
  }
  if (pager.page_size_ != kUffdPageSize) {
    void* zeros = ::mmap(nullptr, pager.page_size_, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (zeros == MAP_FAILED) return err("uffd handler: mmap: {}", errno_string());
    pager.zeros_ = static_cast<const uint8_t*>(zeros);
  }

  UniqueFd fd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return err("memory file {}: {}", memory_path, errno_string());
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return err("memory file {}: {}", memory_path, errno_string());
  pager.file_size_ = static_cast<uint64_t>(st.st_size);
  if (pager.file_size_ != total)
    return err("memory file {} has {} bytes, the VMM's guest memory is {}", memory_path,
               pager.file_size_, total);
  for (const auto& m : pager.mappings_)
    if (m.offset + m.size > pager.file_size_)
      return err("uffd mapping at offset {:#x}+{:#x} is past the end of {}", m.offset, m.size,
                 memory_path);

  void* file =
      ::mmap(nullptr, pager.file_size_, PROT_READ, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (file == MAP_FAILED) return err("memory file {}: mmap: {}", memory_path, errno_string());
  pager.file_ = static_cast<const uint8_t*>(file);

  uint64_t pages = pager.file_size_ / pager.page_size_;
  pager.removed_.assign(pages, false);
  pager.has_data_.assign(pages, false);
  for (off_t at = 0;;) {
    off_t data = ::lseek(fd.get(), at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // nothing but holes past `at`
    if (data < 0) {                         // no hole detection here: all of it is data
      pager.has_data_.assign(pages, true);
      break;
    }
    off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(pager.file_size_);
    uint64_t first = static_cast<uint64_t>(data) / pager.page_size_;
    uint64_t end = (static_cast<uint64_t>(hole) + pager.page_size_ - 1) / pager.page_size_;
    for (uint64_t p = first; p < end && p < pages; ++p) pager.has_data_[p] = true;
    at = hole;
  }
  return pager;
}

UffdPager::UffdPager(UffdPager&& other) noexcept
    : mappings_(std::move(other.mappings_)),
      uffd_(std::move(other.uffd_)),
      page_size_(other.page_size_),
      file_(std::exchange(other.file_, nullptr)),
      file_size_(std::exchange(other.file_size_, 0)),
      zeros_(std::exchange(other.zeros_, nullptr)),
      has_data_(std::move(other.has_data_)),
      removed_(std::move(other.removed_)),
      pending_(std::move(other.pending_)),
      retry_(std::move(other.retry_)),
      stats_(other.stats_) {}

UffdPager::~UffdPager() {
  if (file_) ::munmap(const_cast<uint8_t*>(file_), file_size_);
  if (zeros_) ::munmap(const_cast<uint8_t*>(zeros_), page_size_);
}

Result<uint64_t> UffdPager::file_page(uint64_t page) const {
  for (const auto& m : mappings_)
    if (page >= m.base_host_virt_addr && page - m.base_host_virt_addr < m.size)
      return (m.offset + (page - m.base_host_virt_addr)) / page_size_;
  return err("uffd handler: fault at {:#x} is outside the guest memory it was given", page);
}

void UffdPager::mark_removed(uint64_t start, uint64_t end) {
  for (uint64_t page = start & ~(page_size_ - 1); page < end; page += page_size_) {
    auto index = file_page(page);
    if (index.ok()) removed_[*index] = true;
  }
}

Result<void> UffdPager::read_events() {
  uffd_msg msgs[16];
  for (;;) {
    ssize_t n = ::read(uffd_.get(), msgs, sizeof(msgs));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return {};
    if (n < 0) return err("uffd handler: reading events: {}", errno_string());
    for (size_t i = 0; i < static_cast<size_t>(n) / sizeof(uffd_msg); ++i) {
      const uffd_msg& msg = msgs[i];
      if (msg.event == UFFD_EVENT_PAGEFAULT) {
        ++stats_.faults;
        pending_.push_back(msg.arg.pagefault.address);
      } else if (msg.event == UFFD_EVENT_REMOVE) {
        // The pages are gone from the VMM; if the guest touches them again they are zeros,
        // not the snapshot's contents.
        ++stats_.removes;
        mark_removed(msg.arg.remove.start, msg.arg.remove.end);
      }
    }
  }
}

Result<bool> UffdPager::serve(uint64_t address) {
  uint64_t page = address & ~(page_size_ - 1);
  IGN_ASSIGN_OR_RETURN(uint64_t index, file_page(page));
  int rc;
  bool zero = removed_[index] || !has_data_[index];
  if (zero && !zeros_) {
    uffdio_zeropage z{};
    z.range.start = page;
    z.range.len = page_size_;
    rc = ::ioctl(uffd_.get(), UFFDIO_ZEROPAGE, &z);
  } else {
    uffdio_copy c{};
    c.dst = page;
    c.src = reinterpret_cast<uint64_t>(zero ? zeros_ : file_ + index * page_size_);
    c.len = page_size_;
    rc = ::ioctl(uffd_.get(), UFFDIO_COPY, &c);
  }
  if (rc == 0) {
    ++(zero ? stats_.zeroed : stats_.copied);
    return true;
  }
  switch (errno) {
    case EAGAIN:
      return false;
    case EEXIST: {
      // Two faults on one page (two vCPUs, or the VMM and a vCPU): the first copy resolved
      // it. Wake whoever still waits, in case the first copy's wake came too early for them.
      ++stats_.already_present;
      uffdio_range range{page, page_size_};
      ::ioctl(uffd_.get(), UFFDIO_WAKE, &range);
      return true;
    }
    case ENOENT:  // the mapping is gone (the VMM unmapped its memory)
    case ESRCH:   // the VMM has exited
      return true;
    default:
      return err("uffd handler: resolving the fault at {:#x}: {}", page, errno_string());
  }
}

Result<void> UffdPager::handle_events() {
  for (;;) {
    IGN_TRY(read_events());
    if (pending_.empty()) return {};
    retry_.clear();
    for (uint64_t address : pending_) {
      IGN_ASSIGN_OR_RETURN(bool done, serve(address));
      if (!done) retry_.push_back(address);
    }
    pending_.swap(retry_);
    if (pending_.empty()) return {};
    // EAGAIN: the VMM is removing pages and its remove event is on its way; wait for it.
    pollfd pfd{uffd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, 10);
  }
}

Result<void> UffdPager::serve_until_hangup(int peer) {
  for (;;) {
    pollfd fds[2] = {{uffd_.get(), POLLIN, 0}, {peer, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return err("uffd handler: poll: {}", errno_string());
    }
    if (fds[0].revents & POLLIN) IGN_TRY(handle_events());
    if (fds[0].revents & (POLLERR | POLLHUP)) return err("uffd handler: the userfaultfd failed");
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char buf[256];
      ssize_t n = ::recv(peer, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return {};
    }
  }
}

}  // namespace ignition
