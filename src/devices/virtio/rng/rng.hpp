// virtio-rng (entropy device): fills the driver's buffers from the host's getrandom(2), at the
// pace the entropy object's optional rate limiter allows.
#pragma once

#include <memory>
#include <optional>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/device.hpp"
#include "vmm/config/entropy.hpp"

namespace ignition::devices::virtio {

class Rng final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Largest request served at once; a bigger buffer gets this many bytes.
  static constexpr uint32_t kMaxRequestBytes = 64 * 1024;

  // An unlimited device.
  Rng() = default;
  // With `entropy.rate_limiter`: each request costs one op and the bytes it is served. An
  // absent or disabled limiter limits nothing. `clock` drives the limiter (tests).
  static Result<std::unique_ptr<Rng>> create(const config::Entropy& entropy, Clock clock = {});

  DeviceType type() const override { return DeviceType::Rng; }
  uint64_t features() const override { return kFeatureRingEventIdx; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t, std::span<uint8_t> data) override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override { ctx_.reset(); }
  void process_queue(uint16_t index) override;
  // Watches the rate limiter's timer, to resume a throttled queue.
  Result<void> register_events(EventRegistrar& registrar) override;
  // The limits come from the configuration, which a snapshot keeps: the state holds only
  // the byte count, and a restored limiter starts full.
  std::vector<uint8_t> save_state() const override;
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // The rate limiter's timer fired: serve what waited.
  void on_rate_limiter_timer();

  uint64_t bytes_served() const { return bytes_served_; }
  // Times the rate limiter held the queue back.
  uint64_t throttled() const { return throttled_; }
  bool rate_limited() const { return limiter_ && limiter_->is_blocked(); }

 private:
  explicit Rng(RateLimiter limiter) : limiter_(std::move(limiter)) {}
  // Takes the request's op and `bytes` from the limiter; false when it must wait.
  bool admit(uint32_t bytes);

  std::optional<RateLimiter> limiter_;  // absent: unlimited
  std::optional<ActiveContext> ctx_;
  uint64_t bytes_served_ = 0;
  uint64_t throttled_ = 0;
};

}  // namespace ignition::devices::virtio
