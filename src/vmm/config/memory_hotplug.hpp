// memory-hotplug: the virtio-mem region the host can grow and shrink, as in Firecracker's
// MemoryHotplugConfig / MemoryHotplugSizeUpdate API objects.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

inline constexpr uint32_t kMinHotplugBlockMib = 2;
inline constexpr uint32_t kMinHotplugSlotMib = 128;

struct MemoryHotplugConfig {
  uint32_t total_size_mib = 0;
  uint32_t block_size_mib = kMinHotplugBlockMib;  // the guest's (un)plug unit
  uint32_t slot_size_mib = kMinHotplugSlotMib;    // the host's (de)attach unit

  bool operator==(const MemoryHotplugConfig&) const = default;
};

// PATCH /hotplug/memory.
struct MemoryHotplugSizeUpdate {
  uint32_t requested_size_mib = 0;
  bool operator==(const MemoryHotplugSizeUpdate&) const = default;
};

// block >= 2 and a power of two; slot >= 128 and a multiple of block; total >= slot and a
// multiple of slot.
Result<MemoryHotplugConfig> parse_memory_hotplug(const nlohmann::json& j);
Result<MemoryHotplugSizeUpdate> parse_memory_hotplug_size_update(const nlohmann::json& j);
nlohmann::json to_json(const MemoryHotplugConfig& m);

}  // namespace ignition::config
