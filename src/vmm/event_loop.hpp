// The VMM's event loop (epoll): console input, device eventfds and stop requests are
// handled here, on one thread, off the vCPU threads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition::vmm {

class EventLoop {
 public:
  using Handler = std::function<void(uint32_t epoll_events)>;

  static Result<EventLoop> create();

  // Calls `handler` whenever `fd` has any of `events` (EPOLLIN by default). Device fds
  // (queue kicks, backends) are the ones a pause holds back.
  Result<void> add(int fd, Handler handler, uint32_t events = 0x001 /* EPOLLIN */,
                   bool device = false);
  void remove(int fd);

  // While held, device fds are not watched: their events wait in the kernel.
  void hold_devices();
  void release_devices();

  // Waits up to `timeout_ms` (-1: forever) and runs the handlers of ready fds.
  Result<void> run_once(int timeout_ms);

 private:
  explicit EventLoop(UniqueFd epoll) : epoll_(std::move(epoll)) {}
  UniqueFd epoll_;
  struct Watch {
    Handler handler;
    uint32_t events;
    bool device;
  };
  void watch(int fd, uint32_t events);
  std::map<int, Watch> watches_;
  bool devices_held_ = false;
};

}  // namespace ignition::vmm
