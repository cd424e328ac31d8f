// An interrupt line a device raises from any thread. Backed by an eventfd that the VMM
// registers as a KVM irqfd, so raising it is one write(2) and never touches the vCPUs.
#pragma once

#include "base/event_fd.hpp"

namespace ignition::devices {

class IrqLine {
 public:
  IrqLine(EventFd fd, uint32_t gsi) : fd_(std::move(fd)), gsi_(gsi) {}
  // Edge: the irqchip sees the line go up and down.
  void trigger() const { fd_.signal(); }
  int fd() const { return fd_.fd(); }
  uint32_t gsi() const { return gsi_; }

 private:
  EventFd fd_;
  uint32_t gsi_;
};

}  // namespace ignition::devices
