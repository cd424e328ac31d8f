// EventFd: a counter the kernel can wait on. Wakes the event loop, carries irqfd
// interrupts into KVM and ioeventfd kicks out of it.
#pragma once

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition {

class EventFd {
 public:
  static Result<EventFd> create(int flags = EFD_CLOEXEC | EFD_NONBLOCK) {
    UniqueFd fd(::eventfd(0, flags));
    if (!fd.valid()) return err("eventfd: {}", errno_string());
    return EventFd(std::move(fd));
  }

  // Adds 1 to the counter; never blocks short of 2^64-2 pending signals.
  void signal() const {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd_.get(), &one, sizeof(one));
  }
  // Reads and clears the counter; 0 when nothing was pending.
  uint64_t consume() const {
    uint64_t value = 0;
    return ::read(fd_.get(), &value, sizeof(value)) == sizeof(value) ? value : 0;
  }
  int fd() const { return fd_.get(); }

 private:
  explicit EventFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace ignition
