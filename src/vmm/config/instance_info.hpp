// The body of GET /: who this VMM instance is and what state it is in.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace ignition::config {

struct InstanceInfo {
  std::string app_name = "ignition";
  std::string id{};
  std::string state = "Not started";  // "Not started", "Running" or "Paused"
  std::string vmm_version{};

  bool operator==(const InstanceInfo&) const = default;
};

nlohmann::json to_json(const InstanceInfo& i);

}  // namespace ignition::config
