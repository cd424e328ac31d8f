// CRC-64/XZ (the ECMA-182 polynomial, reflected, as xz and Go's crc64.ECMA use it): the
// checksum that guards snapshot files.
#pragma once

#include <cstdint>
#include <span>

namespace ignition::snapshot {

// Continues a running checksum: crc64(b, crc64(a)) == crc64(a ++ b). Start from 0.
uint64_t crc64(std::span<const uint8_t> data, uint64_t crc = 0);

}  // namespace ignition::snapshot
