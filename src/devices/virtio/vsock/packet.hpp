// virtio-vsock packets (virtio spec 5.10.6): the 44-byte header, and the guest buffers a
// packet's payload lives in. Everything read from the driver is checked here before the
// muxer sees it.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio::vsock {

inline constexpr uint64_t kHostCid = 2;
inline constexpr uint16_t kTypeStream = 1;
inline constexpr uint32_t kHeaderSize = 44;
// The largest payload either side puts in one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
inline constexpr uint32_t kMaxPayload = 64 * 1024;

enum Op : uint16_t {
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};

// SHUTDOWN flags: the sender will receive (RCV) / send (SEND) no more data.
inline constexpr uint32_t kShutdownRcv = 1;
inline constexpr uint32_t kShutdownSend = 2;

struct PacketHeader {
  uint64_t src_cid = 0;
  uint64_t dst_cid = 0;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 0;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 0;
  uint32_t fwd_cnt = 0;
};

using HeaderBytes = std::array<uint8_t, kHeaderSize>;
HeaderBytes encode(const PacketHeader& hdr);
PacketHeader decode(const HeaderBytes& bytes);

// A packet from the tx queue: its header (copied out of guest memory once, so the
// driver cannot change it under us) and exactly hdr.len payload bytes in guest memory.
struct TxPacket {
  PacketHeader hdr;
  std::vector<std::span<const uint8_t>> payload;
};

// The header of a tx chain; an error when the readable part is shorter than a header.
Result<PacketHeader> read_tx_header(const GuestMemory& mem, const DescriptorChain& chain);
// The payload that `hdr` announces; an error when hdr.len exceeds kMaxPayload or the chain.
Result<TxPacket> read_tx_payload(const GuestMemory& mem, const DescriptorChain& chain,
                                 const PacketHeader& hdr);

// An rx-queue chain being filled: the muxer sets `hdr` and reads the payload straight
// into `payload_iov`, then commit() writes the header in front of it.
class RxPacket {
 public:
  // An error when the chain has device-readable buffers or no room for a header.
  static Result<RxPacket> from_chain(GuestMemory& mem, const DescriptorChain& chain);

  // Payload room in this chain, at most kMaxPayload.
  uint32_t capacity() const { return capacity_; }
  // iovecs covering the first `len` (<= capacity) payload bytes.
  std::vector<iovec> payload_iov(uint32_t len) const;
  // Writes `hdr` into the chain; returns the bytes used (header + hdr.len).
  uint32_t commit();

  PacketHeader hdr;

 private:
  explicit RxPacket(std::vector<std::span<uint8_t>> buffers, uint32_t capacity)
      : buffers_(std::move(buffers)), capacity_(capacity) {}
  std::vector<std::span<uint8_t>> buffers_;
  uint32_t capacity_;
};

}  // namespace ignition::devices::virtio::vsock
