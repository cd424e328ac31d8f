#include "devices/virtio/net/checksum.hpp"

namespace ignition::devices::virtio::net {

uint32_t checksum_add(uint32_t sum, std::span<const uint8_t> bytes) {
  uint64_t wide = sum;
  size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) wide += static_cast<uint32_t>(bytes[i] << 8 | bytes[i + 1]);
  if (i < bytes.size()) wide += static_cast<uint32_t>(bytes[i] << 8);
  while (wide >> 32) wide = (wide & 0xffffffff) + (wide >> 32);
  return static_cast<uint32_t>(wide);
}

uint16_t checksum_finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

bool complete_checksum(std::span<uint8_t> frame, uint16_t csum_start, uint16_t csum_offset) {
  size_t field = size_t{csum_start} + csum_offset;
  if (field + 2 > frame.size()) return false;
  uint16_t sum = checksum_finish(checksum_add(0, frame.subspan(csum_start)));
  frame[field] = static_cast<uint8_t>(sum >> 8);
  frame[field + 1] = static_cast<uint8_t>(sum);
  return true;
}

}  // namespace ignition::devices::virtio::net
