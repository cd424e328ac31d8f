// virtio-rng (entropy device): fills the driver's buffers from the host's getrandom(2).
#pragma once

#include <optional>

#include "devices/virtio/device.hpp"

namespace ignition::devices::virtio {

class Rng final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Largest request served at once; a bigger buffer gets this many bytes.
  static constexpr uint32_t kMaxRequestBytes = 64 * 1024;

  DeviceType type() const override { return DeviceType::Rng; }
  uint64_t features() const override { return kFeatureRingEventIdx; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t, std::span<uint8_t> data) override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override { ctx_.reset(); }
  void process_queue(uint16_t index) override;
  std::vector<uint8_t> save_state() const override;
  Result<void> restore_state(std::span<const uint8_t> state) override;

  uint64_t bytes_served() const { return bytes_served_; }

 private:
  std::optional<ActiveContext> ctx_;
  uint64_t bytes_served_ = 0;
};

}  // namespace ignition::devices::virtio
