// Field order here is the encoding: changing it needs a new snapshot format version.
#include "devices/virtio/limiter_state.hpp"

namespace ignition::devices::virtio {

namespace {

void put_bucket(snapshot::Encoder& e, const std::optional<config::TokenBucket>& b) {
  e.boolean(b.has_value());
  if (!b) return;
  e.u64(b->size);
  e.boolean(b->one_time_burst.has_value());
  e.u64(b->one_time_burst.value_or(0));
  e.u64(b->refill_time);
}

std::optional<config::TokenBucket> get_bucket(snapshot::Decoder& d) {
  if (!d.boolean()) return std::nullopt;
  config::TokenBucket b;
  b.size = d.u64();
  bool has_burst = d.boolean();
  uint64_t burst = d.u64();
  if (has_burst) b.one_time_burst = burst;
  b.refill_time = d.u64();
  return b;
}

}  // namespace

void put_rate_limiter(snapshot::Encoder& e, const config::RateLimiter& limits) {
  put_bucket(e, limits.bandwidth);
  put_bucket(e, limits.ops);
}

config::RateLimiter get_rate_limiter(snapshot::Decoder& d) {
  config::RateLimiter limits;
  limits.bandwidth = get_bucket(d);
  limits.ops = get_bucket(d);
  return limits;
}

config::RateLimiter exact_update(const config::RateLimiter& limits) {
  return {limits.bandwidth.value_or(config::TokenBucket{}),
          limits.ops.value_or(config::TokenBucket{})};
}

}  // namespace ignition::devices::virtio
