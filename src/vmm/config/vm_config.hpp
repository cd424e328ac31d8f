// The whole machine description: what Firecracker's --config-file holds.
#pragma once

#include "vmm/config/boot_source.hpp"
#include "vmm/config/machine_config.hpp"

namespace ignition::config {

struct VmConfig {
  MachineConfig machine_config;
  BootSource boot_source;
};

}  // namespace ignition::config
