// ACPI tables for direct-boot guests: there is no firmware, so the VMM writes the RSDP,
// XSDT, FADT (hardware-reduced), MADT and DSDT into guest memory, as Firecracker does.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

// One virtio-mmio transport window and its interrupt (a GSI on the IOAPIC).
struct VirtioMmioSlot {
  uint64_t base;
  uint64_t size;
  uint32_t irq;
};

// Where the VMGenID device keeps its 16-byte generation ID, and the GSI of the Generic
// Event Device that tells the guest to re-read it.
struct VmGenIdSlot {
  uint64_t addr;
  uint32_t gsi;
};

struct AcpiConfig {
  uint32_t num_vcpus;
  // In this order in the DSDT; Linux probes them in that order, so the first block
  // device becomes /dev/vda.
  std::vector<VirtioMmioSlot> virtio_devices;
  // Without one, the DSDT describes no VMGenID device.
  std::optional<VmGenIdSlot> vmgenid = std::nullopt;
};

// xAPIC ids are 8 bits, 0xff is the broadcast id, and the IOAPIC takes one more.
inline constexpr uint32_t kAcpiMaxVcpus = 254;

// Writes RSDP at kRsdpAddr and the other tables from kAcpiTablesAddr; returns the RSDP's
// guest-physical address.
Result<uint64_t> write_acpi_tables(GuestMemory& mem, const AcpiConfig& config);

}  // namespace ignition::x86_64
