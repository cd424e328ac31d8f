// VmStateUpdate parsing and serialization.
#include "vmm/config/vm_state.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

std::string_view to_string(VmState s) {
  return s == VmState::kPaused ? "Paused" : "Resumed";
}

Result<VmStateUpdate> parse_vm_state(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"state"}));
  IGN_ASSIGN_OR_RETURN(std::string state, r.required_string("state"));
  IGN_ASSIGN_OR_RETURN(VmState s, parse_enum<VmState>("state", state,
                                                      {{"Paused", VmState::kPaused},
                                                       {"Resumed", VmState::kResumed}}));
  return VmStateUpdate{s};
}

nlohmann::json to_json(const VmStateUpdate& v) {
  return {{"state", to_string(v.state)}};
}

}  // namespace ignition::config
