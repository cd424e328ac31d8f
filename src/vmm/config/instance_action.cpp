// InstanceActionInfo parsing and serialization.
#include "vmm/config/instance_action.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

std::string_view to_string(ActionType t) {
  switch (t) {
    case ActionType::kFlushMetrics:
      return "FlushMetrics";
    case ActionType::kInstanceStart:
      return "InstanceStart";
    case ActionType::kSendCtrlAltDel:
      return "SendCtrlAltDel";
  }
  return "InstanceStart";
}

Result<InstanceActionInfo> parse_instance_action(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"action_type"}));
  IGN_ASSIGN_OR_RETURN(std::string type, r.required_string("action_type"));
  IGN_ASSIGN_OR_RETURN(ActionType t,
                       parse_enum<ActionType>("action_type", type,
                                              {{"FlushMetrics", ActionType::kFlushMetrics},
                                               {"InstanceStart", ActionType::kInstanceStart},
                                               {"SendCtrlAltDel", ActionType::kSendCtrlAltDel}}));
  return InstanceActionInfo{t};
}

nlohmann::json to_json(const InstanceActionInfo& a) {
  return {{"action_type", to_string(a.action_type)}};
}

}  // namespace ignition::config
