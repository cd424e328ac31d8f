#include "devices/virtio/vsock/tx_buffer.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/fd.hpp"

namespace ignition::devices::virtio::vsock {

void TxBuffer::push(std::span<const uint8_t> data) {
  if (data.empty()) return;
  if (!ring_) ring_ = std::make_unique<uint8_t[]>(capacity_);
  size_t n = std::min<size_t>(data.size(), room());
  uint32_t tail = (head_ + size_) % capacity_;
  size_t first = std::min<size_t>(n, capacity_ - tail);
  std::memcpy(ring_.get() + tail, data.data(), first);
  std::memcpy(ring_.get(), data.data() + first, n - first);
  size_ += static_cast<uint32_t>(n);
}

Result<uint32_t> TxBuffer::flush_to(int fd) {
  if (size_ == 0) return 0u;
  uint32_t first = std::min(size_, capacity_ - head_);
  iovec iov[2] = {{ring_.get() + head_, first}, {ring_.get(), size_ - first}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = size_ > first ? 2 : 1;
  ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0u;
    return err("write to host stream: {}", errno_string());
  }
  head_ = (head_ + static_cast<uint32_t>(n)) % capacity_;
  size_ -= static_cast<uint32_t>(n);
  if (size_ == 0) head_ = 0;
  return static_cast<uint32_t>(n);
}

void TxBuffer::clear() {
  ring_.reset();
  head_ = size_ = 0;
}

}  // namespace ignition::devices::virtio::vsock
