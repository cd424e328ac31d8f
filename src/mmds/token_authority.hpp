// MMDS session tokens (V2): what `PUT /latest/api/token` hands out and every V2 GET must
// carry. A token is 32 random bytes in base64url, valid until its TTL runs out. Firecracker
// encrypts the expiry into the token instead; keeping the live tokens here needs no cipher,
// at the price of a bound on how many are live at once. Not thread-safe (DataStore locks).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.hpp"

namespace ignition::mmds {

class TokenAuthority {
 public:
  using Clock = std::chrono::steady_clock;

  // Firecracker's bounds on X-metadata-token-ttl-seconds.
  static constexpr uint32_t kMinTtlSeconds = 1;
  static constexpr uint32_t kMaxTtlSeconds = 21600;
  // Live tokens kept; beyond it the one closest to expiring is forgotten.
  static constexpr size_t kMaxTokens = 4096;

  // Fails for a TTL out of bounds (with Firecracker's message) or without randomness.
  Result<std::string> issue(uint32_t ttl_seconds, Clock::time_point now);
  bool valid(std::string_view token, Clock::time_point now) const;
  size_t live() const { return tokens_.size(); }

 private:
  void make_room(Clock::time_point now);

  std::unordered_map<std::string, Clock::time_point> tokens_;  // token -> expiry
};

}  // namespace ignition::mmds
