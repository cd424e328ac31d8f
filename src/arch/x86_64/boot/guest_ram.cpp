#include "arch/x86_64/boot/guest_ram.hpp"

namespace ignition::x86_64::boot {

bool ram_covers(const GuestMemory& mem, uint64_t gpa, uint64_t len) {
  if (gpa + len < gpa) return false;
  uint64_t at = gpa;
  const uint64_t end = gpa + len;
  // Regions are sorted by address, so one pass walks a contiguous run.
  for (const auto& r : mem.regions()) {
    if (at >= end) break;
    if (at >= r.gpa && at - r.gpa < r.size) at = r.gpa + r.size;
  }
  return at >= end;
}

}  // namespace ignition::x86_64::boot
