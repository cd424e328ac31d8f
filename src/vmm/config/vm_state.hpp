// The body of PATCH /vm: pause or resume the microVM (e.g. around a snapshot).
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

enum class VmState { kPaused, kResumed };

struct VmStateUpdate {
  VmState state = VmState::kPaused;
  bool operator==(const VmStateUpdate&) const = default;
};

Result<VmStateUpdate> parse_vm_state(const nlohmann::json& j);
nlohmann::json to_json(const VmStateUpdate& v);
std::string_view to_string(VmState s);

}  // namespace ignition::config
