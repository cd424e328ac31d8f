// The Xen PVH boot ABI as Linux implements it (xen/include/public/arch-x86/hvm/start_info.h):
// hvm_start_info at kPvhStartInfoAddr, followed by the module list and the memory map.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/x86_64/boot/boot_info.hpp"
#include "arch/x86_64/layout.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

inline constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with the 0x80 bit of the "E" set
inline constexpr uint32_t kHvmStartVersion = 1;         // version 1 adds the memmap
// Where the module list and memory map go: right after start_info, in the same page and
// below the zero page (which a PVH boot does not use).
inline constexpr uint64_t kPvhModlistAddr = kPvhStartInfoAddr + 0x40;
inline constexpr uint64_t kPvhMemmapAddr = kPvhStartInfoAddr + 0x80;
inline constexpr uint64_t kPvhInfoEnd = kBootParamsAddr;

struct HvmStartInfo {
  uint32_t magic;
  uint32_t version;
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(HvmStartInfo) == 0x38);
static_assert(offsetof(HvmStartInfo, nr_modules) == 0x0c);
static_assert(offsetof(HvmStartInfo, modlist_paddr) == 0x10);
static_assert(offsetof(HvmStartInfo, cmdline_paddr) == 0x18);
static_assert(offsetof(HvmStartInfo, rsdp_paddr) == 0x20);
static_assert(offsetof(HvmStartInfo, memmap_paddr) == 0x28);
static_assert(offsetof(HvmStartInfo, memmap_entries) == 0x30);
static_assert(kPvhStartInfoAddr + sizeof(HvmStartInfo) <= kPvhModlistAddr);

struct HvmModlistEntry {
  uint64_t paddr;
  uint64_t size;
  uint64_t cmdline_paddr;
  uint64_t reserved;
};
static_assert(sizeof(HvmModlistEntry) == 0x20);
static_assert(kPvhModlistAddr + sizeof(HvmModlistEntry) <= kPvhMemmapAddr);

struct HvmMemmapTableEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;  // e820 types
  uint32_t reserved;
};
static_assert(sizeof(HvmMemmapTableEntry) == 0x18);

// Writes start_info (cmdline at kCmdlineAddr, the initrd as module 0, the RSDP) and the
// memory map from e820_map(mem).
Result<void> write_pvh_start_info(GuestMemory& mem, const BootInfo& info);

}  // namespace ignition::x86_64
