#include "devices/rate_limiter.hpp"

#include <sys/timerfd.h>
#include <time.h>

#include <algorithm>

namespace ignition::devices {
namespace {

using u128 = unsigned __int128;

constexpr uint64_t kNsPerMs = 1'000'000;
// Longest timer we arm; a bucket this slow is effectively closed anyway.
constexpr uint64_t kMaxWaitNs = 1ULL << 62;

}  // namespace

uint64_t monotonic_now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

TokenBucket::TokenBucket(const config::TokenBucket& cfg, uint64_t now_ns)
    : size_(cfg.size),
      refill_ms_(std::min(cfg.refill_time, kMaxRefillTimeMs)),
      initial_burst_(cfg.one_time_burst.value_or(0)),
      one_time_burst_(initial_burst_),
      budget_(cfg.size),
      last_update_ns_(now_ns) {}

uint64_t TokenBucket::time_for(uint64_t tokens) const {
  u128 refill_ns = static_cast<u128>(refill_ms_) * kNsPerMs;
  u128 ns = (static_cast<u128>(tokens) * refill_ns + size_ - 1) / size_;
  return ns > kMaxWaitNs ? kMaxWaitNs : static_cast<uint64_t>(ns);
}

void TokenBucket::refill(uint64_t now_ns) {
  if (now_ns <= last_update_ns_) return;  // nothing elapsed, or still paying a debt
  if (budget_ == size_) {
    last_update_ns_ = now_ns;
    return;
  }
  u128 refill_ns = static_cast<u128>(refill_ms_) * kNsPerMs;
  u128 tokens = static_cast<u128>(now_ns - last_update_ns_) * size_ / refill_ns;
  if (tokens >= size_ - budget_) {
    budget_ = size_;
    last_update_ns_ = now_ns;
    return;
  }
  budget_ += static_cast<uint64_t>(tokens);
  // Credit only the time those whole tokens took, so fractions carry over to the next
  // refill instead of being lost at high call rates.
  last_update_ns_ += time_for(static_cast<uint64_t>(tokens));
}

TokenBucket::Outcome TokenBucket::reduce(uint64_t tokens, uint64_t now_ns, uint64_t* wait_ns) {
  refill(now_ns);
  uint64_t from_burst = std::min(tokens, one_time_burst_);
  uint64_t rest = tokens - from_burst;
  if (rest <= budget_) {
    one_time_burst_ -= from_burst;
    budget_ -= rest;
    return Outcome::kSuccess;
  }
  if (rest > size_) {
    // The request can never fit: let it through and block for the time the overdraft
    // takes to refill, by crediting tokens only from that point on.
    one_time_burst_ -= from_burst;
    uint64_t debt = rest - budget_;
    budget_ = 0;
    uint64_t from = std::max(last_update_ns_, now_ns);
    last_update_ns_ = from + time_for(debt);
    *wait_ns = std::max<uint64_t>(last_update_ns_ - now_ns, 1);
    return Outcome::kOverConsumption;
  }
  // Not enough yet: how long until the missing tokens are credited.
  uint64_t missing = time_for(rest - budget_);
  uint64_t wait;
  if (last_update_ns_ > now_ns) {
    wait = (last_update_ns_ - now_ns) + missing;
  } else {
    uint64_t elapsed = now_ns - last_update_ns_;
    wait = missing > elapsed ? missing - elapsed : 1;
  }
  *wait_ns = std::min(wait, kMaxWaitNs);
  return Outcome::kFailure;
}

void TokenBucket::replenish(uint64_t tokens) {
  budget_ = tokens >= size_ - budget_ ? size_ : budget_ + tokens;
}

Result<RateLimiter> RateLimiter::create(const config::RateLimiter& cfg, Clock clock) {
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return err("rate limiter: timerfd_create: {}", errno_string());
  RateLimiter limiter(std::move(timer), clock ? std::move(clock) : Clock(monotonic_now_ns));
  uint64_t now = limiter.clock_();
  if (cfg.bandwidth && cfg.bandwidth->enabled()) limiter.bandwidth_.emplace(*cfg.bandwidth, now);
  if (cfg.ops && cfg.ops->enabled()) limiter.ops_.emplace(*cfg.ops, now);
  return limiter;
}

bool RateLimiter::consume(uint64_t tokens, TokenType type) {
  if (blocked_) return false;
  auto& bucket = bucket_mut(type);
  if (!bucket) return true;
  uint64_t wait = 0;
  switch (bucket->reduce(tokens, clock_(), &wait)) {
    case TokenBucket::Outcome::kSuccess:
      return true;
    case TokenBucket::Outcome::kFailure:
      arm(wait);
      return false;
    case TokenBucket::Outcome::kOverConsumption:
      arm(wait);
      return true;
  }
  return false;
}

void RateLimiter::manual_replenish(uint64_t tokens, TokenType type) {
  if (auto& bucket = bucket_mut(type)) bucket->replenish(tokens);
}

void RateLimiter::arm(uint64_t wait_ns) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(wait_ns / 1'000'000'000ULL);
  spec.it_value.tv_nsec = static_cast<long>(wait_ns % 1'000'000'000ULL);
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
  blocked_ = true;
}

void RateLimiter::on_timer() {
  uint64_t expirations = 0;
  [[maybe_unused]] ssize_t n = ::read(timer_.get(), &expirations, sizeof(expirations));
  // Disarm too: on_timer() may be called before expiry (tests, or a forced retry).
  itimerspec off{};
  ::timerfd_settime(timer_.get(), 0, &off, nullptr);
  blocked_ = false;
}

void RateLimiter::update(const config::RateLimiter& cfg) {
  uint64_t now = clock_();
  auto apply = [now](std::optional<TokenBucket>& bucket,
                     const std::optional<config::TokenBucket>& change) {
    if (!change) return;
    if (change->enabled())
      bucket.emplace(*change, now);
    else
      bucket.reset();
  };
  apply(bandwidth_, cfg.bandwidth);
  apply(ops_, cfg.ops);
  // Whoever is waiting should retry against the new limits right away.
  if (blocked_) arm(1);
}

config::RateLimiter RateLimiter::config() const {
  auto to_config = [](const std::optional<TokenBucket>& b) -> std::optional<config::TokenBucket> {
    if (!b) return std::nullopt;
    config::TokenBucket c;
    c.size = b->size();
    c.refill_time = b->refill_time_ms();
    if (b->initial_one_time_burst() != 0) c.one_time_burst = b->initial_one_time_burst();
    return c;
  };
  return {to_config(bandwidth_), to_config(ops_)};
}

}  // namespace ignition::devices
