// metrics: where the VMM flushes its JSON metrics lines, as in Firecracker's Metrics API object.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

struct MetricsConfig {
  std::string metrics_path{};  // a file or named pipe
  bool emit_id = false;        // add the instance id as a top-level "id" on each line
  // Operator-defined key/values emitted under "properties" on each line.
  std::optional<std::map<std::string, std::string>> properties{};

  bool operator==(const MetricsConfig&) const = default;
};

Result<MetricsConfig> parse_metrics(const nlohmann::json& j);
nlohmann::json to_json(const MetricsConfig& m);

}  // namespace ignition::config
