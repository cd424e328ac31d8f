// The DSDT: the devices Linux cannot discover by itself (COM1, the virtio-mmio
// transports, VMGenID and its event device) and the \_S5_ sleep package that lets it
// power off.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "arch/x86_64/acpi/acpi.hpp"
#include "base/result.hpp"

namespace ignition::x86_64::acpi {

// SLP_TYP for S5 in \_S5_: the value the guest writes (as SLP_TYP << 2 | SLP_EN) to the
// sleep control register to power off. devices::AcpiSleep::kS5 must match.
inline constexpr uint8_t kSleepTypeS5 = 5;

// The complete DSDT (header included). Virtio devices are \_SB_.V000, V001, ... in the
// given order, each with _HID "LNRO0005", _UID = its index, and a _CRS holding its
// window (which must lie below 4 GiB) and its edge-triggered, active-high GSI
// (below kIoapicPins, one per device).
// With `vmgenid`: \_SB_.VGEN (_HID "IGNT0001", _CID "VM_Gen_Counter", ADDR = Package
// {low, high} of the ID's address) and \_SB_.GED_ (ACPI0013), whose _EVT answers the
// GSI with Notify (VGEN, 0x80). The GSI must be an IOAPIC pin no other device uses.
Result<std::vector<uint8_t>> dsdt(std::span<const VirtioMmioSlot> virtio_devices,
                                  const std::optional<VmGenIdSlot>& vmgenid = std::nullopt);

}  // namespace ignition::x86_64::acpi
