// The unit tests' hand-pumped event loop.
#include "support/test_registrar.hpp"

#include <cerrno>
#include <cstring>

namespace ignition::test {

TestRegistrar::TestRegistrar() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

Result<void> TestRegistrar::add(int fd, uint32_t epoll_events, Handler handler) {
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.fd = fd;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
    return err("epoll_ctl add fd {}: {}", fd, std::strerror(errno));
  handlers_[fd] = std::move(handler);
  return {};
}

void TestRegistrar::remove(int fd) {
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

void TestRegistrar::clear() {
  for (const auto& [fd, handler] : handlers_) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  handlers_.clear();
}

int TestRegistrar::pump(std::chrono::milliseconds timeout) {
  epoll_event events[16];
  int n = ::epoll_wait(epoll_.get(), events, 16, static_cast<int>(timeout.count()));
  int ran = 0;
  for (int i = 0; i < n; ++i) {
    // An earlier handler may have removed this fd; a copy survives the handler removing itself.
    auto it = handlers_.find(events[i].data.fd);
    if (it == handlers_.end()) continue;
    Handler h = it->second;
    h(events[i].events);
    ++ran;
  }
  handled_ += ran;
  return ran;
}

bool TestRegistrar::pump_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    pump(std::chrono::milliseconds{20});
  }
  return true;
}

void TestRegistrar::pump_for(std::chrono::milliseconds span) {
  auto until = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < until) pump(std::chrono::milliseconds{20});
}

void TestRegistrar::fire(int fd, uint32_t events) {
  auto it = handlers_.find(fd);
  if (it == handlers_.end()) return;
  Handler h = it->second;
  h(events);
  ++handled_;
}

std::vector<int> TestRegistrar::fds() const {
  std::vector<int> out;
  for (const auto& [fd, handler] : handlers_) out.push_back(fd);
  return out;
}

}  // namespace ignition::test
