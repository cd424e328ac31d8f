#include "devices/bus.hpp"

#include <algorithm>

namespace ignition::devices {

Result<void> Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t len) {
  if (len == 0 || base + len < base) return err("bus range {:#x}+{:#x} is invalid", base, len);
  for (const auto& r : ranges_)
    if (base < r.base + r.len && r.base < base + len)
      return err("bus range {:#x}+{:#x} overlaps {:#x}+{:#x}", base, len, r.base, r.len);
  auto at = std::lower_bound(ranges_.begin(), ranges_.end(), base,
                             [](const Range& r, uint64_t b) { return r.base < b; });
  ranges_.insert(at, Range{base, len, std::move(device)});
  return {};
}

const Bus::Range* Bus::find(uint64_t addr) const {
  auto it = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                             [](uint64_t a, const Range& r) { return a < r.base; });
  if (it == ranges_.begin()) return nullptr;
  --it;
  return addr - it->base < it->len ? &*it : nullptr;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
  const Range* r = find(addr);
  if (!r) return false;
  r->device->read(addr - r->base, data);
  return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
  const Range* r = find(addr);
  if (!r) return false;
  r->device->write(addr - r->base, data);
  return true;
}

}  // namespace ignition::devices
