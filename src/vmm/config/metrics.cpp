// Metrics configuration parsing and serialization.
#include "vmm/config/metrics.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

Result<std::map<std::string, std::string>> parse_properties(const nlohmann::json& j) {
  if (!j.is_object()) return type_error("properties", "an object of strings", j);
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_string()) return type_error(key, "a string", value);
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

}  // namespace

Result<MetricsConfig> parse_metrics(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"metrics_path", "emit_id", "properties"}));
  MetricsConfig m;
  IGN_ASSIGN_OR_RETURN(m.metrics_path, r.required_nonempty_string("metrics_path"));
  IGN_ASSIGN_OR_RETURN(m.emit_id, r.bool_or("emit_id", false));
  IGN_ASSIGN_OR_RETURN(m.properties, r.optional_with("properties", parse_properties));
  return m;
}

nlohmann::json to_json(const MetricsConfig& m) {
  nlohmann::json j = {{"metrics_path", m.metrics_path}, {"emit_id", m.emit_id}};
  if (m.properties) j["properties"] = *m.properties;
  return j;
}

}  // namespace ignition::config
