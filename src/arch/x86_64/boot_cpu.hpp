// The boot vCPU's state at the kernel entry, Firecracker style: a boot GDT and empty IDT
// in low memory, identity page tables for the low 4 GiB, and the registers each boot
// protocol expects. Only the BSP gets this; APs wait for INIT/SIPI in the in-kernel LAPIC.
#pragma once

#include <array>
#include <cstdint>

#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "hv/cpu_state.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

// Boot GDT selectors (the same slots for both protocols).
inline constexpr uint16_t kBootCodeSelector = 0x08;
inline constexpr uint16_t kBootDataSelector = 0x10;
inline constexpr uint16_t kBootTssSelector = 0x18;
inline constexpr size_t kBootGdtEntries = 4;

inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Et = 1ull << 4;
inline constexpr uint64_t kCr0Pg = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferLma = 1ull << 10;
// Page table entry bits: present, writable, 2 MiB page (in a PD entry).
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteHuge = 1ull << 7;

struct BootCpuState {
  hv::Regs regs;
  hv::Sregs sregs;
};

// A GDT descriptor from the kernel's GDT_ENTRY(flags, base, limit) convention: `flags`
// holds access byte (bits 0-7) and the G/DB/L/AVL nibble (bits 12-15).
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
// The segment register a descriptor loads; limit is scaled to bytes when G is set.
hv::Segment segment_from_gdt(uint64_t entry, uint16_t selector);
// null, code, data, TSS: 64-bit code for Linux64, flat 32-bit code for PVH.
std::array<uint64_t, kBootGdtEntries> boot_gdt(BootProtocol protocol);

// Writes the GDT at kGdtAddr, a zero IDT entry at kIdtAddr, and identity page tables
// (PML4 at kPml4Addr, PDPT at kPdptAddr, kPdCount PDs of 2 MiB pages from kPdAddr).
Result<void> write_boot_tables(GuestMemory& mem, BootProtocol protocol);

// Overlays the boot state on `sregs` in place (segments, GDTR/IDTR, CR0/CR3/CR4, EFER),
// leaving apic_base, CR2, CR8, LDT and the interrupt bitmap as the caller had them, so a
// VMM can do get_sregs -> apply_boot_sregs -> set_sregs.
void apply_boot_sregs(hv::Sregs& sregs, BootProtocol protocol);
// General registers at entry: Linux64 has RSI = zero page and a boot stack; PVH has
// EBX = hvm_start_info. RFLAGS = 2 (interrupts off).
hv::Regs boot_regs(BootProtocol protocol, uint64_t entry);
// The x87/SSE state at power-on (FCW 0x37f, MXCSR 0x1f80), as Firecracker sets it.
hv::Fpu boot_fpu();

// write_boot_tables + boot_regs + apply_boot_sregs on zeroed sregs.
Result<BootCpuState> setup_boot_cpu(GuestMemory& mem, BootProtocol protocol, uint64_t entry);

}  // namespace ignition::x86_64
