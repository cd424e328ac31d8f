// The disk image the guests' virtio-blk test expects (IGN_BLK_* in ign_protocol.h), and
// the check of what the guest left in it. Shared by the ignition and QEMU device tests.
#pragma once

#include <cstdint>
#include <string>

namespace ignition::test {

inline constexpr uint64_t kPatternDiskSectors = 96;

// Every 8-byte word of sector s holds s (little-endian).
void write_pattern_disk(const std::string& path, uint64_t sectors = kPatternDiskSectors);
// The first sector that differs from what the guest should have left (with `written`,
// the rewritten range carries IGN_BLK_WRITE_TAG | s); -1 when all match.
int64_t first_unexpected_sector(const std::string& path, bool written,
                                uint64_t sectors = kPatternDiskSectors);

}  // namespace ignition::test
