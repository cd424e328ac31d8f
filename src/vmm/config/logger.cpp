// Logger configuration parsing and serialization.
#include "vmm/config/logger.hpp"

#include <algorithm>
#include <cctype>

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

Result<LogLevel> parse_level(const nlohmann::json& j) {
  if (!j.is_string()) return type_error("level", "a string", j);
  std::string s = j.get<std::string>();
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto r = parse_enum<LogLevel>("level", lower,
                                {{"off", LogLevel::kOff},
                                 {"trace", LogLevel::kTrace},
                                 {"debug", LogLevel::kDebug},
                                 {"info", LogLevel::kInfo},
                                 {"warning", LogLevel::kWarning},
                                 {"warn", LogLevel::kWarning},
                                 {"error", LogLevel::kError}});
  if (!r.ok()) {
    return err("field 'level' must be one of Error, Warning, Info, Debug, Trace, Off; got '{}'", s);
  }
  return r;
}

}  // namespace

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::kOff:
      return "Off";
    case LogLevel::kTrace:
      return "Trace";
    case LogLevel::kDebug:
      return "Debug";
    case LogLevel::kInfo:
      return "Info";
    case LogLevel::kWarning:
      return "Warning";
    case LogLevel::kError:
      return "Error";
  }
  return "Info";
}

Result<LoggerConfig> parse_logger(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"log_path", "level", "show_level",
                                                     "show_log_origin", "module"}));
  LoggerConfig l;
  IGN_ASSIGN_OR_RETURN(l.log_path, r.optional_string("log_path"));
  if (l.log_path && l.log_path->empty()) return err("field 'log_path' must not be empty");
  IGN_ASSIGN_OR_RETURN(l.level, r.optional_with("level", parse_level));
  IGN_ASSIGN_OR_RETURN(l.show_level, r.optional_bool("show_level"));
  IGN_ASSIGN_OR_RETURN(l.show_log_origin, r.optional_bool("show_log_origin"));
  IGN_ASSIGN_OR_RETURN(l.module, r.optional_string("module"));
  return l;
}

nlohmann::json to_json(const LoggerConfig& l) {
  return {{"log_path", or_null(l.log_path)},
          {"level", l.level ? nlohmann::json(to_string(*l.level)) : nlohmann::json()},
          {"show_level", or_null(l.show_level)},
          {"show_log_origin", or_null(l.show_log_origin)},
          {"module", or_null(l.module)}};
}

}  // namespace ignition::config
