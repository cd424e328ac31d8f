// Firecracker-style I/O rate limiter: a bandwidth (bytes) and an ops token bucket, and a
// timerfd that fires when a blocked limiter can make progress again.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::devices {

enum class TokenType { kBytes, kOps };

// Monotonic time in nanoseconds; injectable so tests never sleep.
using Clock = std::function<uint64_t()>;
uint64_t monotonic_now_ns();

// One bucket: `size` tokens refilled continuously over `refill_time` ms, plus an initial
// `one_time_burst` that is spent first and never refilled.
class TokenBucket {
 public:
  // Longest refill period honoured; longer ones are clamped (keeps the math in 128 bits).
  static constexpr uint64_t kMaxRefillTimeMs = 1ULL << 40;

  // `cfg` must be enabled(). The bucket starts full.
  TokenBucket(const config::TokenBucket& cfg, uint64_t now_ns);

  enum class Outcome {
    kSuccess,
    kFailure,          // not enough tokens yet; nothing was taken
    kOverConsumption,  // more than the whole bucket: taken, bucket now in debt
  };
  // Takes `tokens`. On kFailure and kOverConsumption, *wait_ns says how long until the
  // bucket can serve again (the request, respectively anything).
  Outcome reduce(uint64_t tokens, uint64_t now_ns, uint64_t* wait_ns);
  // Gives back tokens taken for a request that did not go ahead (capped at size).
  void replenish(uint64_t tokens);

  uint64_t size() const { return size_; }
  uint64_t refill_time_ms() const { return refill_ms_; }
  uint64_t budget() const { return budget_; }
  uint64_t one_time_burst() const { return one_time_burst_; }
  uint64_t initial_one_time_burst() const { return initial_burst_; }

 private:
  void refill(uint64_t now_ns);
  // Nanoseconds to produce `tokens` at this bucket's rate, rounded up.
  uint64_t time_for(uint64_t tokens) const;

  uint64_t size_;
  uint64_t refill_ms_;
  uint64_t initial_burst_;
  uint64_t one_time_burst_;
  uint64_t budget_;
  // Time up to which tokens have been credited; in the future while in debt.
  uint64_t last_update_ns_;
};

class RateLimiter {
 public:
  // A limiter with the given limits (absent or disabled buckets do not limit).
  static Result<RateLimiter> create(const config::RateLimiter& cfg = {}, Clock clock = {});

  // Takes `tokens` of `type` if the bucket allows; false (and the timer armed) when the
  // caller must wait. Always false while blocked, so waiting requests keep their order.
  bool consume(uint64_t tokens, TokenType type);
  // Returns tokens consumed for a request that did not go ahead.
  void manual_replenish(uint64_t tokens, TokenType type);
  // True between a refused consume() and the timer firing.
  bool is_blocked() const { return blocked_; }

  // Readable when a blocked limiter may make progress; register it on the event loop
  // (EPOLLIN) and call on_timer() when it fires, then retry the pending work.
  int timer_fd() const { return timer_.get(); }
  void on_timer();

  // Applies a runtime change (PATCH after boot): an absent bucket keeps its current
  // setting, a present disabled one (size or refill_time 0) removes the limit, a
  // present enabled one replaces the bucket (starting full).
  void update(const config::RateLimiter& cfg);

  bool unlimited() const { return !bandwidth_ && !ops_; }
  const std::optional<TokenBucket>& bucket(TokenType type) const {
    return type == TokenType::kBytes ? bandwidth_ : ops_;
  }
  // The limits in force, in the API's terms.
  config::RateLimiter config() const;

 private:
  RateLimiter(UniqueFd timer, Clock clock) : timer_(std::move(timer)), clock_(std::move(clock)) {}
  std::optional<TokenBucket>& bucket_mut(TokenType type) {
    return type == TokenType::kBytes ? bandwidth_ : ops_;
  }
  void arm(uint64_t wait_ns);

  UniqueFd timer_;
  Clock clock_;
  std::optional<TokenBucket> bandwidth_;
  std::optional<TokenBucket> ops_;
  bool blocked_ = false;
};

}  // namespace ignition::devices
