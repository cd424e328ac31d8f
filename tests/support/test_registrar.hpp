// The VMM's event loop as a device sees it, for unit tests: an epoll set the test pumps by
// hand, or whose handlers it fires directly (injected timer ticks).
#pragma once

#include <sys/epoll.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "base/fd.hpp"
#include "devices/virtio/device.hpp"

namespace ignition::test {

class TestRegistrar final : public devices::virtio::EventRegistrar {
 public:
  TestRegistrar();

  Result<void> add(int fd, uint32_t epoll_events, Handler handler) override;
  void remove(int fd) override;
  // Forgets every handler, for a test that re-creates its device on the same registrar.
  void clear();

  // Runs the handlers of the fds ready within `timeout`; returns how many ran.
  int pump(std::chrono::milliseconds timeout = std::chrono::milliseconds{0});
  // Pumps until `done` or `limit` passes; true when `done`.
  bool pump_until(const std::function<bool()>& done,
                  std::chrono::milliseconds limit = std::chrono::seconds{5});
  void pump_for(std::chrono::milliseconds span);
  // Runs `fd`'s handler as if it had fired; nothing when `fd` is not watched.
  void fire(int fd, uint32_t events = EPOLLIN);

  bool watches(int fd) const { return handlers_.contains(fd); }
  size_t watched() const { return handlers_.size(); }
  // The watched fds, in ascending order.
  std::vector<int> fds() const;
  // Handlers run so far, by pump() or fire().
  int handled() const { return handled_; }

 private:
  UniqueFd epoll_;
  std::map<int, Handler> handlers_;
  int handled_ = 0;
};

}  // namespace ignition::test
