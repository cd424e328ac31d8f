// Applying a Logger config to spdlog.
#include "api/log_config.hpp"

#include <fcntl.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>

#include "base/fd.hpp"

namespace ignition::api {

namespace {

spdlog::level::level_enum to_spdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kOff:
      return spdlog::level::off;
    case config::LogLevel::kTrace:
      return spdlog::level::trace;
    case config::LogLevel::kDebug:
      return spdlog::level::debug;
    case config::LogLevel::kInfo:
      return spdlog::level::info;
    case config::LogLevel::kWarning:
      return spdlog::level::warn;
    case config::LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

Result<void> apply_logger_config(const config::LoggerConfig& config) {
  std::shared_ptr<spdlog::logger> logger = spdlog::default_logger();
  if (config.log_path) {
    // Open it ourselves first: a missing path is the user's error, with errno to show.
    UniqueFd probe(::open(config.log_path->c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    if (!probe.valid()) return err("{}: {}", *config.log_path, errno_string());
    try {
      auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(*config.log_path);
      logger = std::make_shared<spdlog::logger>("ignition", sink);
    } catch (const spdlog::spdlog_ex& e) {
      return err("{}: {}", *config.log_path, e.what());
    }
  }
  logger->set_level(to_spdlog(config.level.value_or(config::LogLevel::kInfo)));
  std::string pattern = "[%H:%M:%S.%e] ";
  if (config.show_level.value_or(false)) pattern += "[%l] ";
  if (config.show_log_origin.value_or(false)) pattern += "[%s:%#] ";
  logger->set_pattern(pattern + "%v");
  logger->flush_on(spdlog::level::trace);  // every line reaches the file as it is logged
  spdlog::set_default_logger(logger);
  return {};
}

}  // namespace ignition::api
