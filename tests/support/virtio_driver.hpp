// A virtio driver for host-side tests: sets up split virtqueues in a GuestMemory and
// drives a virtio-mmio transport through its registers, as a guest kernel would, so
// devices can be tested (and mistreated) without booting anything.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "devices/bus.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::test {

struct DriverBuffer {
  uint64_t gpa;
  uint32_t len;
  bool writable;  // the device writes it
};

class VirtioTestDriver {
 public:
  // Queue rings live from `rings_base`, 16 KiB per queue.
  VirtioTestDriver(devices::BusDevice& transport, GuestMemory& memory,
                   uint64_t rings_base = 0x10000)
      : transport_(transport), memory_(memory), rings_base_(rings_base) {}

  uint32_t read_reg(uint64_t offset);
  void write_reg(uint64_t offset, uint32_t value);
  uint64_t device_features();

  // The whole handshake: reset, ACK, DRIVER, features, FEATURES_OK, queues, DRIVER_OK.
  // Returns the final status register.
  uint32_t start(uint64_t features, const std::vector<uint16_t>& queue_sizes);

  // Ring addresses of queue `q` as start() laid them out.
  uint64_t desc_addr(uint16_t q) const { return rings_base_ + 0x4000ULL * q; }
  uint64_t avail_addr(uint16_t q) const { return desc_addr(q) + 0x1000; }
  uint64_t used_addr(uint16_t q) const { return desc_addr(q) + 0x2000; }

  // Writes a chain into the descriptor table (from descriptor `first`) and publishes its
  // head in the available ring. Returns the head index.
  uint16_t post(uint16_t q, const std::vector<DriverBuffer>& buffers, uint16_t first = 0);
  // Publishes an arbitrary head index (for malformed-ring tests).
  void publish(uint16_t q, uint16_t head);
  void write_descriptor(uint16_t q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                        uint16_t next);

  // Next used element (id, len) not consumed yet.
  std::optional<std::pair<uint32_t, uint32_t>> take_used(uint16_t q);
  uint16_t used_idx(uint16_t q);

  // Writes QueueNotify, as a guest kick that exits to the VMM would.
  void kick(uint16_t q) { write_reg(0x50, q); }

 private:
  devices::BusDevice& transport_;
  GuestMemory& memory_;
  uint64_t rings_base_;
  std::vector<uint16_t> sizes_;
  std::vector<uint16_t> avail_idx_;
  std::vector<uint16_t> last_used_;
};

}  // namespace ignition::test
