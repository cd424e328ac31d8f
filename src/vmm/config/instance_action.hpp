// The body of PUT /actions: start the VM, flush metrics, or send Ctrl+Alt+Del.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

enum class ActionType { kFlushMetrics, kInstanceStart, kSendCtrlAltDel };

struct InstanceActionInfo {
  ActionType action_type = ActionType::kInstanceStart;
  bool operator==(const InstanceActionInfo&) const = default;
};

Result<InstanceActionInfo> parse_instance_action(const nlohmann::json& j);
nlohmann::json to_json(const InstanceActionInfo& a);
std::string_view to_string(ActionType t);

}  // namespace ignition::config
