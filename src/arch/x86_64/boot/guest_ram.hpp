// Questions about where guest RAM is, asked before anything is written to it.
#pragma once

#include <cstdint>

#include "memory/guest_memory.hpp"

namespace ignition::x86_64::boot {

// True when every byte of [gpa, gpa + len) is guest RAM, possibly across regions that are
// contiguous in guest-physical space. False on overflow.
bool ram_covers(const GuestMemory& mem, uint64_t gpa, uint64_t len);

}  // namespace ignition::x86_64::boot
