// machine-config: vCPUs, memory and dirty tracking, as in Firecracker's API model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ignition::config {

struct MachineConfig {
  uint32_t vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
  std::optional<std::string> cpu_template;
  std::string huge_pages = "None";
};

}  // namespace ignition::config
