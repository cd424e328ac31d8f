#include "vmm/event_loop.hpp"

#include <sys/epoll.h>

namespace ignition::vmm {

Result<EventLoop> EventLoop::create() {
  UniqueFd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd.valid()) return err("epoll_create1: {}", errno_string());
  return EventLoop(std::move(fd));
}

Result<void> EventLoop::add(int fd, Handler handler, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
    return err("epoll_ctl add fd {}: {}", fd, errno_string());
  handlers_[fd] = std::move(handler);
  return {};
}

void EventLoop::remove(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

Result<void> EventLoop::run_once(int timeout_ms) {
  epoll_event events[16];
  int n = ::epoll_wait(epoll_.get(), events, 16, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return {};
    return err("epoll_wait: {}", errno_string());
  }
  for (int i = 0; i < n; ++i) {
    // A handler may remove fds, including ones later in this batch.
    auto it = handlers_.find(events[i].data.fd);
    if (it != handlers_.end()) {
      Handler handler = it->second;
      handler(events[i].events);
    }
  }
  return {};
}

}  // namespace ignition::vmm
