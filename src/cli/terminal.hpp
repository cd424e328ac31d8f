// RawTerminal: puts a terminal in raw mode for the guest console (every key, Ctrl-C
// included, goes to the guest) and restores it when destroyed.
#pragma once

#include <termios.h>
#include <unistd.h>

namespace ignition::cli {

class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (!::isatty(fd_) || ::tcgetattr(fd_, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    raw.c_oflag |= OPOST;  // keep "\n" -> "\r\n" so host-side logs stay readable
    active_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

}  // namespace ignition::cli
