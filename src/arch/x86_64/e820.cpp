#include "arch/x86_64/e820.hpp"

#include <algorithm>

#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

std::vector<E820Range> e820_map(const GuestMemory& mem) {
  // Holes carved out of RAM, in address order: the EBDA, VGA hole, option and BIOS ROMs
  // (where the MP table, RSDP and ACPI tables live), then the 32-bit MMIO gap.
  struct Hole {
    uint64_t start, end;
  };
  constexpr Hole kHoles[] = {{kEbdaStart, kHighMemStart}, {kMmioGapStart, kMmioGapEnd}};

  // The EBDA/BIOS area is reserved, as Firecracker reserves its system area, so the guest
  // never allocates over the tables there.
  std::vector<E820Range> pieces = {{kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved}};
  for (const auto& r : mem.regions()) {
    uint64_t start = r.gpa;
    const uint64_t end = r.gpa + r.size;
    for (const Hole& h : kHoles) {
      if (h.start >= end || h.end <= start) continue;
      if (start < h.start) pieces.push_back({start, h.start - start, kE820Ram});
      start = std::min(end, h.end);
    }
    if (start < end) pieces.push_back({start, end - start, kE820Ram});
  }
  std::sort(pieces.begin(), pieces.end(),
            [](const E820Range& a, const E820Range& b) { return a.addr < b.addr; });

  std::vector<E820Range> map;
  for (const E820Range& p : pieces) {
    if (!map.empty() && map.back().type == p.type && map.back().addr + map.back().size == p.addr)
      map.back().size += p.size;
    else
      map.push_back(p);
  }
  return map;
}

}  // namespace ignition::x86_64
