// RateLimiter / TokenBucket: the I/O throttling settings shared by drives, net, entropy,
// pmem and the serial console, as in Firecracker's API model.
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

// A bucket of `size` tokens refilled every `refill_time` ms, with an extra initial
// `one_time_burst`. size == 0 or refill_time == 0 means "no limit" (Firecracker's rule).
struct TokenBucket {
  uint64_t size = 0;
  std::optional<uint64_t> one_time_burst{};
  uint64_t refill_time = 0;

  bool enabled() const { return size != 0 && refill_time != 0; }
  bool operator==(const TokenBucket&) const = default;
};

// Independent limits on bytes (bandwidth) and operations (ops).
struct RateLimiter {
  std::optional<TokenBucket> bandwidth{};
  std::optional<TokenBucket> ops{};

  bool operator==(const RateLimiter&) const = default;
};

Result<TokenBucket> parse_token_bucket(const nlohmann::json& j);
Result<RateLimiter> parse_rate_limiter(const nlohmann::json& j);
nlohmann::json to_json(const TokenBucket& b);
nlohmann::json to_json(const RateLimiter& r);

}  // namespace ignition::config
