// machine-config: vCPUs, memory and dirty tracking, as in Firecracker's API model.
// PUT replaces the whole configuration; PATCH (MachineConfigUpdate) changes only given fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

inline constexpr uint32_t kMaxVcpus = 32;

struct MachineConfig {
  uint32_t vcpu_count = 1;
  uint64_t mem_size_mib = 128;
  bool smt = false;
  bool track_dirty_pages = false;
  // A static CPU template ("C3", "T2", "T2S", "T2CL", "T2A"); "None" is stored as nullopt.
  std::optional<std::string> cpu_template{};
  // "None" (4 KiB pages), "Transparent" (THP via madvise) or "2M" (hugetlbfs).
  std::string huge_pages = "None";

  bool operator==(const MachineConfig&) const = default;
};

// The body of PATCH /machine-config.
struct MachineConfigUpdate {
  std::optional<uint32_t> vcpu_count{};
  std::optional<uint64_t> mem_size_mib{};
  std::optional<bool> smt{};
  std::optional<std::string> cpu_template{};  // "None" here clears the template
  std::optional<bool> track_dirty_pages{};
  std::optional<std::string> huge_pages{};

  bool empty() const;
  bool operator==(const MachineConfigUpdate&) const = default;
};

// A PUT /machine-config body (or the config file's "machine-config"): vcpu_count and
// mem_size_mib are required, the rest default.
Result<MachineConfig> parse_machine_config(const nlohmann::json& j);
// A PATCH /machine-config body: every field optional, but not all absent.
Result<MachineConfigUpdate> parse_machine_config_update(const nlohmann::json& j);
// `base` with `update` applied, validated as a whole (e.g. smt on + odd vcpu_count).
Result<MachineConfig> apply_machine_config_update(const MachineConfig& base,
                                                  const MachineConfigUpdate& update);
// vcpu_count in 1..32 (1 or even with smt), mem_size_mib >= 1 and a multiple of the page
// size huge_pages implies, known cpu_template and huge_pages strings.
Result<void> validate_machine_config(const MachineConfig& c);
// The GET /machine-config body.
nlohmann::json to_json(const MachineConfig& c);

}  // namespace ignition::config
