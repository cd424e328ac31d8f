// A split virtqueue (virtio spec 2.7) as the device sees it. The driver is untrusted:
// every index, address and length read from guest memory is checked, and anything out
// of bounds makes the queue report an error (the device then asks for a reset) rather
// than crash or touch memory outside the guest.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio {

// One guest buffer of a descriptor chain, already checked to lie inside guest RAM.
struct Buffer {
  uint64_t gpa;
  uint32_t len;
  bool writable;  // device writes it (the driver reads it)
};

// A request popped from the available ring: its head index (to return it) and buffers.
// Device-readable buffers come first, as the spec requires; `readable_count` says how many.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Buffer> buffers;
  size_t readable_count = 0;

  uint64_t readable_bytes() const;
  uint64_t writable_bytes() const;
};

// The driver-set layout of a queue (virtio-mmio registers QueueNum, QueueDesc, ...).
struct QueueConfig {
  uint16_t size = 0;
  bool ready = false;
  uint64_t desc_addr = 0;
  uint64_t avail_addr = 0;
  uint64_t used_addr = 0;
};

// Everything a queue holds, for snapshots: the driver's layout and where the device
// stands in the rings.
struct QueueState {
  uint16_t max_size = 0;
  QueueConfig config;
  uint16_t next_avail = 0;
  uint16_t next_used = 0;
  bool event_idx = false;
  uint16_t signalled_used = 0;
  bool signalled_valid = false;
};

class Queue {
 public:
  explicit Queue(uint16_t max_size) : max_size_(max_size) {}

  uint16_t max_size() const { return max_size_; }
  QueueConfig& config() { return config_; }
  const QueueConfig& config() const { return config_; }

  // Checks the driver's layout against guest memory before the device uses the queue.
  Result<void> validate(const GuestMemory& mem) const;
  // Starts using the queue (after validate); event_idx is VIRTIO_F_EVENT_IDX negotiated.
  void activate(bool event_idx);
  // Back to the state after device reset.
  void reset();

  // Next available request, nullopt when the ring is empty. An error means the driver
  // broke the protocol (the queue is then unusable until reset).
  Result<std::optional<DescriptorChain>> pop(GuestMemory& mem);
  // Returns a request with `len` bytes written into its writable buffers.
  Result<void> add_used(GuestMemory& mem, uint16_t head, uint32_t len);
  // True when the driver wants an interrupt for the used entries added since the last
  // call (honours VIRTIO_F_EVENT_IDX and VRING_AVAIL_F_NO_INTERRUPT).
  Result<bool> needs_interrupt(const GuestMemory& mem);
  // Puts the last popped request back (e.g. no room in a backend yet).
  void undo_pop() { --next_avail_; }

  // The driver's available index: how many requests it has ever made available.
  Result<uint16_t> avail_idx(const GuestMemory& mem) const;

  // Position in the rings.
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }
  void set_positions(uint16_t next_avail, uint16_t next_used) {
    next_avail_ = next_avail;
    next_used_ = next_used;
  }

  QueueState save_state() const;
  // Takes a saved state, ring positions included (unlike activate(), which starts them at
  // zero). A queue the device was using (`in_use`) is checked as validate() does, and its
  // positions must be ones the device could have reached; one it was not is only a set
  // of registers, checked when the device starts. On error nothing changes.
  Result<void> restore_state(const QueueState& state, const GuestMemory& mem, bool in_use);

 private:
  Result<void> read_chain(const GuestMemory& mem, uint16_t head, DescriptorChain& chain) const;

  uint16_t max_size_;
  QueueConfig config_;
  bool event_idx_ = false;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;  // used idx at the last interrupt decision
  bool signalled_valid_ = false;
};

}  // namespace ignition::devices::virtio
