// The port-I/O and MMIO buses: address ranges mapped to devices. A vCPU exit for an
// address lands on the device that owns it, with the offset inside its range.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ignition::devices {

// A device reached by guest loads/stores. Called from vCPU threads, possibly several at
// once: devices guard their own state.
class BusDevice {
 public:
  virtual ~BusDevice() = default;
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

class Bus {
 public:
  // Fails when [base, base+len) overlaps a range already taken.
  Result<void> insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len);

  // Return false when no device owns `addr` (the access is then the caller's to handle).
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

 private:
  struct Range {
    uint64_t base;
    uint64_t len;
    std::shared_ptr<BusDevice> device;
  };
  const Range* find(uint64_t addr) const;

  std::vector<Range> ranges_;  // sorted by base; fixed once the VM runs
};

}  // namespace ignition::devices
