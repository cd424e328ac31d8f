// Gives guest RAM back to the host: after a discard the pages use no host memory and read
// back as zeros; the guest faults fresh pages in if it touches them again.
#pragma once

#include <cstdint>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio {

// Discards [gpa, gpa+len), which must be page-aligned and lie inside guest RAM (it may span
// regions that are contiguous in guest-physical space). Guest RAM is a MAP_SHARED file, where
// MADV_DONTNEED only drops this process's page-table entries and the file keeps the pages,
// so the range is also punched out of the file. That is done only when the file has no
// name (a memfd): a named file's contents belong to someone else (e.g. a snapshot).
Result<void> discard_guest_ram(GuestMemory& mem, uint64_t gpa, uint64_t len);

}  // namespace ignition::devices::virtio
