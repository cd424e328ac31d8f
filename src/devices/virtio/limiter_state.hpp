// Rate limiter settings inside device snapshot state (virtio-blk and virtio-net share it).
// The limits are saved, not the buckets' levels: a restored limiter starts full.
#pragma once

#include "snapshot/codec.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::devices::virtio {

void put_rate_limiter(snapshot::Encoder& e, const config::RateLimiter& limits);
config::RateLimiter get_rate_limiter(snapshot::Decoder& d);
// The argument for RateLimiter::update() that installs exactly `limits`: an absent bucket
// becomes a disabled one, so a limit the device was created with goes away too.
config::RateLimiter exact_update(const config::RateLimiter& limits);

}  // namespace ignition::devices::virtio
