// How a device asks the VMM to stop the VM (guest reboot or power-off) without knowing
// the VMM: it records why and wakes the event loop.
#pragma once

#include <atomic>

#include "base/event_fd.hpp"

namespace ignition::devices {

// Stop: the VMM itself ended the VM (after a snapshot, on a signal, from the API).
enum class ExitReason { None, Reset, Shutdown, Stop };

class VmExitRequest {
 public:
  explicit VmExitRequest(EventFd fd) : fd_(std::move(fd)) {}
  void request(ExitReason reason) {
    ExitReason none = ExitReason::None;
    reason_.compare_exchange_strong(none, reason);  // the first reason wins
    fd_.signal();
  }
  ExitReason reason() const { return reason_.load(); }
  int fd() const { return fd_.fd(); }

 private:
  EventFd fd_;
  std::atomic<ExitReason> reason_{ExitReason::None};
};

}  // namespace ignition::devices
