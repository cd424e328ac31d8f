// Internet checksums (RFC 1071), and completing the partial checksum a driver leaves in a
// frame when it offloads the work (VIRTIO_NET_HDR_F_NEEDS_CSUM): a device that reads the
// frame itself, rather than passing it on, must finish the sum first.
#pragma once

#include <cstdint>
#include <span>

namespace ignition::devices::virtio::net {

// Adds `bytes`, as big-endian 16-bit words, to the running one's-complement `sum` (not
// folded). Only the last piece of a sum may have an odd length.
uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> bytes);
// Folds `sum` to 16 bits and complements it: the value for a checksum field.
uint16_t checksum_finish(uint32_t sum);

// Writes the checksum the virtio header asked for: the sum of the frame from `csum_start`
// (the partial sum the driver left in the field included) stored at csum_start +
// csum_offset. False, leaving the frame as it was, when that field is outside the frame.
bool complete_checksum(std::span<uint8_t> frame, uint16_t csum_start, uint16_t csum_offset);

}  // namespace ignition::devices::virtio::net
