// VMGenID (Microsoft's "Virtual Machine Generation ID"): a 16-byte random ID in guest memory
// that changes whenever the VM may have been duplicated, so guests reseed their RNGs.
#pragma once

#include <array>
#include <cstdint>

#include "base/result.hpp"
#include "devices/irq.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices {

// The guest finds the ID through the DSDT (x86_64::AcpiConfig::vmgenid) and re-reads it
// when the Generic Event Device's interrupt arrives. Holds no snapshot state: every boot
// and every restore writes a fresh ID.
class VmGenId {
 public:
  static constexpr size_t kIdSize = 16;
  using Id = std::array<uint8_t, kIdSize>;

  // `gpa` must be 8-byte aligned (the spec asks for it); `irq` is the GED's line.
  static Result<VmGenId> create(uint64_t gpa, IrqLine irq);

  // Writes a fresh random ID, never all zeros and never the previous one, at the address.
  Result<void> regenerate(GuestMemory& mem);
  // Raises the interrupt that makes the guest re-read the ID (ACPI Notify 0x80).
  void notify() const { irq_.trigger(); }

  const Id& id() const { return id_; }
  uint64_t address() const { return gpa_; }
  uint32_t gsi() const { return irq_.gsi(); }

 private:
  VmGenId(uint64_t gpa, IrqLine irq) : gpa_(gpa), irq_(std::move(irq)) {}

  uint64_t gpa_;
  IrqLine irq_;
  Id id_{};
};

}  // namespace ignition::devices
