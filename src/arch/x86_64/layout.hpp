// The x86_64 guest-physical address map, in one place. Follows Firecracker's layout so
// guests and tools that know one know the other.
#pragma once

#include <cstdint>

namespace ignition::x86_64 {

// Low memory: real-mode structures the boot protocols expect at fixed addresses.
inline constexpr uint64_t kGdtAddr = 0x500;            // boot GDT (4 entries)
inline constexpr uint64_t kIdtAddr = 0x520;            // empty boot IDT
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;  // hvm_start_info + memmap
inline constexpr uint64_t kBootParamsAddr = 0x7000;    // Linux zero page
inline constexpr uint64_t kPml4Addr = 0x9000;          // identity page tables: PML4,
inline constexpr uint64_t kPdptAddr = 0xa000;          // one PDPT,
inline constexpr uint64_t kPdAddr = 0xb000;            // four PDs of 2 MiB pages (4 GiB)
inline constexpr uint64_t kPdCount = 4;
inline constexpr uint64_t kBootStackTop = 0x8ff0;  // initial RSP for 64-bit entry
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;  // 64 KiB, incl. the NUL
inline constexpr uint64_t kMptableAddr = 0x9fc00;     // MP floating pointer + table (EBDA)
inline constexpr uint64_t kEbdaStart = 0x9fc00;
inline constexpr uint64_t kBiosRomStart = 0xe0000;  // RSDP lives here (ACPI spec)
inline constexpr uint64_t kRsdpAddr = 0xe0000;
inline constexpr uint64_t kAcpiTablesAddr = 0xe0100;  // XSDT, FADT, MADT, DSDT follow
inline constexpr uint64_t kAcpiTablesEnd = 0x100000;
inline constexpr uint64_t kHighMemStart = 0x100000;  // kernels load at 1 MiB
// VMGenID's 16-byte generation ID: the last page below the BIOS area, in the option-ROM
// hole of the e820-reserved system area [kEbdaStart, kHighMemStart). Firecracker takes it
// from the top of the same area. Nothing else lands there: the MP table ends near 0xa1200
// even for 254 vCPUs, the ACPI tables start at kBiosRomStart, and kernels and initrds
// load at kHighMemStart or above.
inline constexpr uint64_t kVmGenIdAddr = 0xdf000;

// The 32-bit MMIO gap: no RAM between kMmioGapStart and 4 GiB.
inline constexpr uint64_t kMmioGapStart = 0xd0000000;
inline constexpr uint64_t kMmioGapEnd = 0x100000000;
inline constexpr uint64_t kIoapicAddr = 0xfec00000;
inline constexpr uint64_t kLapicAddr = 0xfee00000;
// Firecracker's boot-time marker: the guest writes kBootTimerMagic to offset 0.
inline constexpr uint64_t kBootTimerAddr = kMmioGapStart;
inline constexpr uint8_t kBootTimerMagic = 123;
// virtio-mmio windows, one 4 KiB page each, after the boot timer.
inline constexpr uint64_t kVirtioMmioBase = kMmioGapStart + 0x1000;
inline constexpr uint64_t kVirtioMmioSize = 0x1000;
// First IRQ handed to virtio-mmio devices (legacy IRQs 0-4 are taken by PIT/serial etc.).
inline constexpr uint32_t kVirtioIrqBase = 5;
inline constexpr uint32_t kIoapicPins = 24;
// The ACPI Generic Event Device's GSI, which tells the guest the VMGenID changed: the
// last IOAPIC pin, so virtio devices keep every pin from kVirtioIrqBase below it.
inline constexpr uint32_t kVmGenIdIrq = kIoapicPins - 1;

// Legacy port I/O.
inline constexpr uint16_t kSerialCom1Port = 0x3f8;
inline constexpr uint32_t kSerialCom1Irq = 4;
inline constexpr uint32_t kI8042Irq = 1;           // keyboard (Ctrl+Alt+Del from the API)
inline constexpr uint16_t kI8042Port = 0x60;       // data 0x60, command/status 0x64
inline constexpr uint16_t kAcpiSleepPort = 0x3c0;  // FADT sleep control/status register
// The checkpoint/reset port (only with MachineIo::reset_port): a cooperating guest asks for
// an in-process checkpoint or reset at an exact instruction (devices/legacy/reset_port.hpp).
inline constexpr uint16_t kResetPort = 0x3c4;

}  // namespace ignition::x86_64

#include <vector>

namespace ignition::x86_64 {

struct RamRange {
  uint64_t gpa;
  uint64_t size;
};

// Splits `mem_bytes` of RAM around the MMIO gap: low RAM below kMmioGapStart, the
// rest from 4 GiB up.
inline std::vector<RamRange> ram_ranges(uint64_t mem_bytes) {
  if (mem_bytes <= kMmioGapStart) return {{0, mem_bytes}};
  return {{0, kMmioGapStart}, {kMmioGapEnd, mem_bytes - kMmioGapStart}};
}

// virtio-pmem regions go right after RAM, 2 MiB aligned, one after the other: below the
// MMIO gap when RAM ends there and all of `pmem_bytes` fits (where the test guests' identity
// map reaches them), else after the last RAM byte above 4 GiB.
inline constexpr uint64_t kPmemAlignment = 2ull << 20;
inline uint64_t pmem_base(uint64_t mem_bytes, uint64_t pmem_bytes) {
  auto align = [](uint64_t a) {
    return (a + kPmemAlignment - 1) / kPmemAlignment * kPmemAlignment;
  };
  if (mem_bytes <= kMmioGapStart && align(mem_bytes) + pmem_bytes <= kMmioGapStart)
    return align(mem_bytes);
  return align(mem_bytes <= kMmioGapStart ? kMmioGapEnd : kMmioGapEnd + mem_bytes - kMmioGapStart);
}
// True when [gpa, gpa+size) overlaps neither RAM nor the MMIO gap.
inline bool pmem_region_fits(uint64_t gpa, uint64_t size, uint64_t mem_bytes) {
  if (gpa + size < gpa) return false;
  for (const auto& r : ram_ranges(mem_bytes))
    if (gpa < r.gpa + r.size && r.gpa < gpa + size) return false;
  return gpa + size <= kMmioGapStart || gpa >= kMmioGapEnd;
}

}  // namespace ignition::x86_64
