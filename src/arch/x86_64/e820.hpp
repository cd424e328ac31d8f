// The guest's physical memory map (BIOS e820 style), shared by the Linux zero page and the
// PVH memmap: usable RAM below the EBDA, the EBDA/BIOS area reserved, RAM from 1 MiB to
// the MMIO gap, RAM from 4 GiB up.
#pragma once

#include <cstdint>
#include <vector>

#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

inline constexpr uint32_t kE820Ram = 1;
inline constexpr uint32_t kE820Reserved = 2;

struct E820Range {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  bool operator==(const E820Range&) const = default;
};

// Sorted, non-overlapping; adjacent RAM regions are merged. RAM that a region might place
// inside [kEbdaStart, kHighMemStart) or the MMIO gap is left out.
std::vector<E820Range> e820_map(const GuestMemory& mem);

}  // namespace ignition::x86_64
