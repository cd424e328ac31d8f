#include "vmm/event_loop.hpp"

#include <sys/epoll.h>

namespace ignition::vmm {

Result<EventLoop> EventLoop::create() {
  UniqueFd fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!fd.valid()) return err("epoll_create1: {}", errno_string());
  return EventLoop(std::move(fd));
}

Result<void> EventLoop::add(int fd, Handler handler, uint32_t events, bool device) {
  epoll_event ev{};
  ev.events = device && devices_held_ ? 0 : events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
    return err("epoll_ctl add fd {}: {}", fd, errno_string());
  watches_[fd] = Watch{std::move(handler), events, device};
  return {};
}

void EventLoop::remove(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  watches_.erase(fd);
}

void EventLoop::watch(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::hold_devices() {
  devices_held_ = true;
  for (auto& [fd, w] : watches_)
    if (w.device) watch(fd, 0);
}

void EventLoop::release_devices() {
  devices_held_ = false;
  for (auto& [fd, w] : watches_)
    if (w.device) watch(fd, w.events);
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
    auto it = watches_.find(events[i].data.fd);
    if (it != watches_.end()) {
      if (it->second.device && devices_held_) continue;
      Handler handler = it->second.handler;
      handler(events[i].events);
    }
  }
  return {};
}

}  // namespace ignition::vmm
