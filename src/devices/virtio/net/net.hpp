// virtio-net backed by a host TAP device, as in Firecracker: queue 0 receives, queue 1
// transmits, and each frame travels with its virtio_net_hdr_v1 unchanged between the guest
// and the TAP, so checksum and segmentation offloads cost nothing here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/rate_limiter.hpp"
#include "devices/tap.hpp"
#include "devices/virtio/device.hpp"
#include "devices/virtio/net/metrics.hpp"
#include "devices/virtio/net/tx.hpp"
#include "devices/virtio/net/virtio_net.hpp"
#include "vmm/config/network_interface.hpp"

namespace ignition::devices::virtio {

class Net final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kRxQueue = 0;
  static constexpr uint16_t kTxQueue = 1;

  // Sees every guest frame (Ethernet bytes, no virtio header, any checksum the driver
  // offloaded filled in) before the TAP does and returns true when it took the frame: where
  // the MMDS answers 169.254.169.254 itself.
  using TxFilter = std::function<bool(std::span<const uint8_t> frame)>;
  // Optional, with a filter: sees the first kTxPeekBytes of each guest frame (fewer when the
  // frame is shorter) and says whether the filter wants it, so frames it does not want are
  // not copied whole. Without one, the filter sees every frame.
  using TxClaim = std::function<bool(std::span<const uint8_t> head)>;
  static constexpr size_t kTxPeekBytes = 64;
  // Frames the VMM itself has for the guest (the MMDS's replies): writes the next one
  // (Ethernet bytes, checksums complete) into `buf` and returns its size, 0 when it has none.
  // Asked before the TAP is read whenever the device fills RX buffers, and after every TX
  // batch in which the filter took a frame.
  using RxSource = std::function<size_t(std::span<uint8_t> buf)>;

  // Opens the TAP `cfg.host_dev_name`.
  static Result<std::unique_ptr<Net>> create(const config::NetworkInterface& cfg);
  // Over a TAP the caller opened.
  static Result<std::unique_ptr<Net>> create(const config::NetworkInterface& cfg, Tap tap);

  DeviceType type() const override { return DeviceType::Net; }
  uint64_t features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;
  // The TAP (edge-triggered) and both rate limiters' timers.
  Result<void> register_events(EventRegistrar& registrar) override;
  std::vector<uint8_t> save_state() const override;
  // The interface must be the saved one (same id). The guest keeps the MAC and MTU it
  // read, so they come from the snapshot, as do the rate limits (buckets start full).
  // Activation sets the TAP's offloads again from the negotiated features.
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // PATCH /network-interfaces/{id}: an absent limiter is left as it is. Any thread.
  void update_rate_limiters(const std::optional<config::RateLimiter>& rx,
                            const std::optional<config::RateLimiter>& tx);
  config::RateLimiter rx_rate_limiter() const;
  config::RateLimiter tx_rate_limiter() const;

  // Set before the device starts.
  void set_tx_filter(TxFilter filter, TxClaim claim = {}) {
    tx_filter_ = std::move(filter);
    tx_claim_ = std::move(claim);
  }
  void set_rx_source(RxSource source) { rx_source_ = std::move(source); }

  const std::string& id() const { return id_; }
  // A clone's own MAC, set after restore_state() (only when the snapshot's NIC had one):
  // what the config space shows a driver that reads it again.
  void set_guest_mac(const config::MacAddress& mac);
  const Tap& tap() const { return tap_; }
  const net::NetMetrics& metrics() const { return metrics_; }

 private:
  Net(const config::NetworkInterface& cfg, Tap tap, RateLimiter rx, RateLimiter tx);

  void process_rx();
  void process_tx();
  // Fills rx_frame_ from the RX source or else the TAP; false when neither has a frame.
  bool next_rx_frame();
  // True when the TX filter took the frame.
  bool transmit(const net::TxFrame& frame);
  bool filter_wants(const net::TxFrame& frame) const;
  // Takes one op and `bytes` from `limiter`; false (nothing taken) when it must wait.
  bool consume(RateLimiter& limiter, uint64_t bytes);
  void replenish(RateLimiter& limiter, uint64_t bytes);
  void on_limiter_timer(RateLimiter& limiter);
  bool add_used(uint16_t queue, uint16_t head);
  void signal(uint16_t queue);
  void fail(uint16_t queue, const Error& e);
  bool running() const { return ctx_.has_value() && !broken_; }

  std::string id_;
  Tap tap_;
  uint64_t features_ = 0;
  net::ConfigSpace config_{};
  std::optional<config::MacAddress> guest_mac_;

  std::optional<ActiveContext> ctx_;
  bool mergeable_ = false;
  bool broken_ = false;  // asked for a reset; ignore backend events until it comes

  // A frame read from the TAP that the guest has not taken yet (rx_pending_ bytes, 0 when
  // none): while it waits, the TAP is not read.
  std::vector<uint8_t> rx_frame_;
  size_t rx_pending_ = 0;
  bool rx_from_source_ = false;  // the pending frame is the RX source's, not the TAP's

  TxFilter tx_filter_;
  TxClaim tx_claim_;
  RxSource rx_source_;
  std::vector<uint8_t> tx_copy_;

  // PATCH requests arrive on another thread than the one moving frames.
  mutable std::mutex limiter_mu_;
  RateLimiter rx_limiter_;
  RateLimiter tx_limiter_;

  net::NetMetrics metrics_;
};

}  // namespace ignition::devices::virtio
