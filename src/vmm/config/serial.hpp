// serial: where the guest's serial console output goes, as in Firecracker's SerialDevice.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::config {

struct SerialConfig {
  std::optional<std::string> serial_out_path{};  // a file or named pipe; unset: stdout
  // Bytes over the rate are dropped (and counted), so a chatty guest cannot flood the host.
  std::optional<TokenBucket> rate_limiter{};

  bool operator==(const SerialConfig&) const = default;
};

Result<SerialConfig> parse_serial(const nlohmann::json& j);
nlohmann::json to_json(const SerialConfig& s);

}  // namespace ignition::config
