// The fixed-format ACPI tables, each returned as complete bytes with a valid checksum:
// RSDP, XSDT, FADT and MADT. The DSDT, which is AML, is in dsdt.hpp.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ignition::x86_64::acpi {

// RSDP revision 2 (36 bytes): both the ACPI 1.0 checksum (first 20 bytes) and the
// extended checksum; no RSDT, only the XSDT.
std::vector<uint8_t> rsdp(uint64_t xsdt_addr);

std::vector<uint8_t> xsdt(std::span<const uint64_t> table_addrs);

// FADT revision 6: hardware-reduced ACPI, sleep control/status registers at
// kAcpiSleepPort, X_DSDT at `dsdt_addr`.
std::vector<uint8_t> fadt(uint64_t dsdt_addr);
inline constexpr uint32_t kFadtLength = 276;

// MADT: a Local APIC per vCPU (enabled, APIC id = vCPU index), the IOAPIC at
// kIoapicAddr with GSI base 0, and an ISA IRQ 4 (COM1) override to GSI 4.
Result<std::vector<uint8_t>> madt(uint32_t num_vcpus);

}  // namespace ignition::x86_64::acpi
