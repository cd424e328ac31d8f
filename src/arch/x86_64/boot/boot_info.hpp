// What the kernel is told at boot besides its entry registers: the command line, the
// initrd and the ACPI RSDP, written as a Linux zero page or a PVH start_info.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "arch/x86_64/initrd.hpp"
#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

struct BootInfo {
  std::string cmdline;
  std::optional<InitrdPlacement> initrd;
  uint64_t rsdp_addr = 0;  // 0: no ACPI tables
};

// Writes the NUL-terminated command line at kCmdlineAddr. Errors when it holds a NUL,
// does not fit in kCmdlineMaxSize, or is longer than `max_len` (the kernel's limit).
Result<void> write_cmdline(GuestMemory& mem, std::string_view cmdline, uint64_t max_len);

// Writes the command line, then the zero page (Linux64) or hvm_start_info (PVH) with
// the e820 map / memmap, initrd and RSDP, as `kernel.protocol` requires.
Result<void> write_boot_info(GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info);

}  // namespace ignition::x86_64
