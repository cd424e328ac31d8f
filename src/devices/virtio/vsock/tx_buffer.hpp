// Guest-to-host bytes a connection could not write to its Unix stream yet (the host
// side is slower than the guest). Bounded by the buffer the connection advertised to
// the guest, so a guest that honours its credit can never make it grow further.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "base/result.hpp"

namespace ignition::devices::virtio::vsock {

class TxBuffer {
 public:
  explicit TxBuffer(uint32_t capacity) : capacity_(capacity) {}

  uint32_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  uint32_t room() const { return capacity_ - size_; }

  // Appends `data`; the caller checks room() first.
  void push(std::span<const uint8_t> data);
  // Writes as much as the (non-blocking) stream takes; returns the bytes written,
  // 0 when it would block. An error means the stream is broken.
  Result<uint32_t> flush_to(int fd);
  // Drops everything and the storage with it.
  void clear();

 private:
  uint32_t capacity_;
  std::unique_ptr<uint8_t[]> ring_;  // allocated on first use: idle connections cost nothing
  uint32_t head_ = 0;                // oldest byte
  uint32_t size_ = 0;
};

}  // namespace ignition::devices::virtio::vsock
