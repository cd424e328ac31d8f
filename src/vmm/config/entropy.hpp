// entropy: the virtio-rng device, as in Firecracker's EntropyDevice API object.
#pragma once

#include <optional>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::config {

struct Entropy {
  std::optional<RateLimiter> rate_limiter{};

  bool operator==(const Entropy&) const = default;
};

Result<Entropy> parse_entropy(const nlohmann::json& j);
nlohmann::json to_json(const Entropy& e);

}  // namespace ignition::config
