// The whole machine description: what Firecracker's --config-file holds and what
// GET /vm/config returns. Each resource lives in its own header.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/balloon.hpp"
#include "vmm/config/boot_source.hpp"
#include "vmm/config/cpu_config.hpp"
#include "vmm/config/drive.hpp"
#include "vmm/config/entropy.hpp"
#include "vmm/config/logger.hpp"
#include "vmm/config/machine_config.hpp"
#include "vmm/config/memory_hotplug.hpp"
#include "vmm/config/metrics.hpp"
#include "vmm/config/mmds_config.hpp"
#include "vmm/config/network_interface.hpp"
#include "vmm/config/pmem.hpp"
#include "vmm/config/serial.hpp"
#include "vmm/config/vsock.hpp"

namespace ignition::config {

struct VmConfig {
  MachineConfig machine_config{};
  BootSource boot_source{};
  std::vector<Drive> drives{};
  std::vector<NetworkInterface> network_interfaces{};
  std::optional<Vsock> vsock{};
  std::optional<Entropy> entropy{};
  std::optional<Balloon> balloon{};
  std::optional<LoggerConfig> logger{};
  std::optional<MetricsConfig> metrics{};
  std::optional<MmdsConfig> mmds_config{};
  std::optional<CpuConfig> cpu_config{};
  // "cpu-config" given as a path to a template file; load_vm_config_file() reads it into
  // cpu_config, parse_vm_config() leaves it for the caller.
  std::optional<std::string> cpu_config_path{};
  std::optional<SerialConfig> serial{};
  std::vector<Pmem> pmem{};
  std::optional<MemoryHotplugConfig> memory_hotplug{};

  bool operator==(const VmConfig&) const = default;
};

// A config-file document: "boot-source" is required, every other key optional (null counts
// as absent), unknown keys are errors. Runs validate_vm_config() on the result.
Result<VmConfig> parse_vm_config(const nlohmann::json& j);
// Reads and parses a config file; errors are prefixed with the path. A "cpu-config" path is
// read too (relative to the working directory, as Firecracker does).
Result<VmConfig> load_vm_config_file(const std::string& path);
// Checks across resources: unique drive/iface/pmem ids, guest MACs and TAP names, at most
// one root device (drives and pmem), MMDS interfaces that exist, a balloon no larger than
// memory, and a valid machine-config.
Result<void> validate_vm_config(const VmConfig& c);
// The GET /vm/config body: every top-level key present, null or [] when unset.
nlohmann::json to_json(const VmConfig& c);

}  // namespace ignition::config
