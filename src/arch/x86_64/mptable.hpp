// The Intel MultiProcessor Specification 1.4 table, for kernels that find CPUs and the
// IOAPIC without ACPI (booted with acpi=off, or built without it): the "_MP_" floating
// pointer at kMptableAddr, where Linux scans, followed by the "PCMP" configuration table.
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

// xAPIC ids are 8 bits, 0xff is the broadcast id, and the IOAPIC takes one more.
inline constexpr uint32_t kMptableMaxVcpus = 254;

// A processor entry per vCPU (APIC id = index, cpu 0 the BSP), one ISA bus, the IOAPIC,
// ISA IRQs 0..kIoapicPins-1 routed to the same IOAPIC pins (KVM's default routing), and
// LINT0 = ExtINT, LINT1 = NMI. The table starts in the EBDA's last KiB below 640 KiB and,
// past 37 vCPUs, runs on into the reserved legacy hole; it must end below
// kBiosRomStart.
Result<void> write_mptable(GuestMemory& mem, uint32_t num_vcpus);

// Bytes write_mptable() writes for `num_vcpus`, floating pointer included.
uint64_t mptable_size(uint32_t num_vcpus);

}  // namespace ignition::x86_64
