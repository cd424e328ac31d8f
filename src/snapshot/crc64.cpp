// Table-driven CRC-64/XZ, one byte per step: snapshot state files are small.
#include "snapshot/crc64.hpp"

#include <array>

namespace ignition::snapshot {

namespace {

constexpr uint64_t kPolyReflected = 0xc96c5795d7870f42;  // ECMA-182 0x42f0e1eba9ea3693, reversed

constexpr std::array<uint64_t, 256> make_table() {
  std::array<uint64_t, 256> table{};
  for (uint64_t i = 0; i < 256; ++i) {
    uint64_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolyReflected : 0);
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint64_t, 256> kTable = make_table();

}  // namespace

uint64_t crc64(std::span<const uint8_t> data, uint64_t crc) {
  crc = ~crc;
  for (uint8_t byte : data) crc = kTable[(crc ^ byte) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace ignition::snapshot
