// Memory hotplug configuration parsing, validation and serialization.
#include "vmm/config/memory_hotplug.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

Result<MemoryHotplugConfig> parse_memory_hotplug(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r,
                       FieldReader::open(j, {"total_size_mib", "block_size_mib", "slot_size_mib"}));
  MemoryHotplugConfig m;
  IGN_ASSIGN_OR_RETURN(m.total_size_mib, r.required_uint<uint32_t>("total_size_mib"));
  IGN_ASSIGN_OR_RETURN(m.block_size_mib,
                       r.uint_or<uint32_t>("block_size_mib", kMinHotplugBlockMib));
  IGN_ASSIGN_OR_RETURN(m.slot_size_mib, r.uint_or<uint32_t>("slot_size_mib", kMinHotplugSlotMib));
  if (m.block_size_mib < kMinHotplugBlockMib) {
    return err("block_size_mib must be at least {}, got {}", kMinHotplugBlockMib, m.block_size_mib);
  }
  if ((m.block_size_mib & (m.block_size_mib - 1)) != 0) {
    return err("block_size_mib must be a power of 2, got {}", m.block_size_mib);
  }
  if (m.slot_size_mib < kMinHotplugSlotMib) {
    return err("slot_size_mib must be at least {}, got {}", kMinHotplugSlotMib, m.slot_size_mib);
  }
  if (m.slot_size_mib % m.block_size_mib != 0) {
    return err("slot_size_mib ({}) must be a multiple of block_size_mib ({})", m.slot_size_mib,
               m.block_size_mib);
  }
  if (m.total_size_mib < m.slot_size_mib) {
    return err("total_size_mib ({}) must be at least slot_size_mib ({})", m.total_size_mib,
               m.slot_size_mib);
  }
  if (m.total_size_mib % m.slot_size_mib != 0) {
    return err("total_size_mib ({}) must be a multiple of slot_size_mib ({})", m.total_size_mib,
               m.slot_size_mib);
  }
  return m;
}

Result<MemoryHotplugSizeUpdate> parse_memory_hotplug_size_update(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"requested_size_mib"}));
  MemoryHotplugSizeUpdate u;
  IGN_ASSIGN_OR_RETURN(u.requested_size_mib, r.required_uint<uint32_t>("requested_size_mib"));
  return u;
}

nlohmann::json to_json(const MemoryHotplugConfig& m) {
  return {{"total_size_mib", m.total_size_mib},
          {"block_size_mib", m.block_size_mib},
          {"slot_size_mib", m.slot_size_mib}};
}

}  // namespace ignition::config
