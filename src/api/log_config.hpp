// Applies a Firecracker Logger config (PUT /logger, or "logger" in a config file) to the
// process's spdlog logger: where logs go, the level, and what each line shows.
#pragma once

#include "base/result.hpp"
#include "vmm/config/logger.hpp"

namespace ignition::api {

// log_path must name an existing file or FIFO (as in Firecracker); lines are appended.
Result<void> apply_logger_config(const config::LoggerConfig& config);

}  // namespace ignition::api
