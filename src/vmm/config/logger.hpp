// logger: where and how verbosely the VMM logs, as in Firecracker's Logger API object.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

enum class LogLevel { kOff, kTrace, kDebug, kInfo, kWarning, kError };

struct LoggerConfig {
  std::optional<std::string> log_path{};  // a file or named pipe
  std::optional<LogLevel> level{};        // default Info
  std::optional<bool> show_level{};
  std::optional<bool> show_log_origin{};
  std::optional<std::string> module{};  // only log messages from this module path

  bool operator==(const LoggerConfig&) const = default;
};

// Levels are case-insensitive and "Warn" is accepted for "Warning", as in Firecracker.
Result<LoggerConfig> parse_logger(const nlohmann::json& j);
nlohmann::json to_json(const LoggerConfig& l);
std::string_view to_string(LogLevel level);

}  // namespace ignition::config
