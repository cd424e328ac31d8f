#include "support/virtio_driver.hpp"

#include <cstring>

namespace ignition::test {

uint32_t VirtioTestDriver::read_reg(uint64_t offset) {
  uint32_t value = 0;
  transport_.read(offset, {reinterpret_cast<uint8_t*>(&value), 4});
  return value;
}

void VirtioTestDriver::write_reg(uint64_t offset, uint32_t value) {
  transport_.write(offset, {reinterpret_cast<const uint8_t*>(&value), 4});
}

uint64_t VirtioTestDriver::device_features() {
  write_reg(0x14, 0);
  uint64_t low = read_reg(0x10);
  write_reg(0x14, 1);
  return low | (uint64_t{read_reg(0x10)} << 32);
}

uint32_t VirtioTestDriver::start(uint64_t features, const std::vector<uint16_t>& queue_sizes) {
  write_reg(0x70, 0);
  write_reg(0x70, 1);
  write_reg(0x70, 1 | 2);
  write_reg(0x24, 0);
  write_reg(0x20, static_cast<uint32_t>(features));
  write_reg(0x24, 1);
  write_reg(0x20, static_cast<uint32_t>(features >> 32));
  write_reg(0x70, 1 | 2 | 8);
  sizes_ = queue_sizes;
  avail_idx_.assign(queue_sizes.size(), 0);
  last_used_.assign(queue_sizes.size(), 0);
  for (uint16_t q = 0; q < queue_sizes.size(); ++q) {
    (void)memory_.fill(desc_addr(q), 0, 0x4000);
    write_reg(0x30, q);
    write_reg(0x38, queue_sizes[q]);
    write_reg(0x80, static_cast<uint32_t>(desc_addr(q)));
    write_reg(0x84, static_cast<uint32_t>(desc_addr(q) >> 32));
    write_reg(0x90, static_cast<uint32_t>(avail_addr(q)));
    write_reg(0x94, static_cast<uint32_t>(avail_addr(q) >> 32));
    write_reg(0xa0, static_cast<uint32_t>(used_addr(q)));
    write_reg(0xa4, static_cast<uint32_t>(used_addr(q) >> 32));
    write_reg(0x44, 1);
  }
  write_reg(0x70, 1 | 2 | 8 | 4);
  return read_reg(0x70);
}

void VirtioTestDriver::write_descriptor(uint16_t q, uint16_t index, uint64_t addr, uint32_t len,
                                        uint16_t flags, uint16_t next) {
  uint8_t desc[16];
  std::memcpy(desc, &addr, 8);
  std::memcpy(desc + 8, &len, 4);
  std::memcpy(desc + 12, &flags, 2);
  std::memcpy(desc + 14, &next, 2);
  (void)memory_.write(desc_addr(q) + 16ULL * index, desc);
}

uint16_t VirtioTestDriver::post(uint16_t q, const std::vector<DriverBuffer>& buffers,
                                uint16_t first) {
  for (size_t i = 0; i < buffers.size(); ++i) {
    uint16_t index = static_cast<uint16_t>((first + i) % sizes_[q]);
    uint16_t flags = (buffers[i].writable ? 2 : 0) | (i + 1 < buffers.size() ? 1 : 0);
    write_descriptor(q, index, buffers[i].gpa, buffers[i].len, flags,
                     static_cast<uint16_t>((index + 1) % sizes_[q]));
  }
  publish(q, first);
  return first;
}

void VirtioTestDriver::publish(uint16_t q, uint16_t head) {
  uint16_t idx = avail_idx_[q];
  (void)memory_.write_obj<uint16_t>(avail_addr(q) + 4 + 2ULL * (idx % sizes_[q]), head);
  avail_idx_[q] = static_cast<uint16_t>(idx + 1);
  (void)memory_.write_obj<uint16_t>(avail_addr(q) + 2, avail_idx_[q]);
}

uint16_t VirtioTestDriver::used_idx(uint16_t q) {
  return memory_.read_obj<uint16_t>(used_addr(q) + 2).value();
}

std::optional<std::pair<uint32_t, uint32_t>> VirtioTestDriver::take_used(uint16_t q) {
  if (used_idx(q) == last_used_[q]) return std::nullopt;
  uint64_t elem = used_addr(q) + 4 + 8ULL * (last_used_[q] % sizes_[q]);
  last_used_[q]++;
  return std::make_pair(memory_.read_obj<uint32_t>(elem).value(),
                        memory_.read_obj<uint32_t>(elem + 4).value());
}

}  // namespace ignition::test
