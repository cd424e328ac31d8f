// virtio-vsock (virtio spec 5.10) with Firecracker's hybrid backend: guest AF_VSOCK
// streams become host AF_UNIX streams. Host processes connect to uds_path and send
// "CONNECT <port>\n"; guest connections to host port P reach "<uds_path>_P".
#pragma once

#include <memory>
#include <optional>

#include "devices/virtio/device.hpp"
#include "devices/virtio/vsock/limits.hpp"
#include "devices/virtio/vsock/muxer.hpp"
#include "vmm/config/vsock.hpp"

namespace ignition::devices::virtio {

class Vsock final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kRxQueue = 0;
  static constexpr uint16_t kTxQueue = 1;
  static constexpr uint16_t kEventQueue = 2;

  // Binds the host listener at config.uds_path now (a stale socket file there is
  // replaced; a live listener or a non-socket file is an error). The path is removed
  // when the device is destroyed.
  static Result<std::unique_ptr<Vsock>> create(const config::Vsock& config,
                                               const vsock::Limits& limits = {});

  DeviceType type() const override { return DeviceType::Vsock; }
  uint64_t features() const override { return kFeatureRingEventIdx; }
  std::vector<uint16_t> queue_max_sizes() const override {
    return {kQueueSize, kQueueSize, kQueueSize};
  }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}  // guest_cid is read-only
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;
  // Watches the backend's one epoll fd; host sockets are watched inside it.
  Result<void> register_events(EventRegistrar& registrar) override;
  std::vector<uint8_t> save_state() const override;
  // The guest CID must be the saved one. A device saved active sends a transport reset
  // when the transport re-activates it: the guest's sockets did not survive.
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // For snapshots: drops every connection (closing the host streams) and posts a
  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on the event queue, as Firecracker does. Nothing
  // is sent on the rx queue until the driver re-arms the event queue (kicks it). Call it
  // with the transport's lock held, like every other device callback.
  Result<void> send_transport_reset();

  uint64_t guest_cid() const { return guest_cid_; }
  size_t connection_count() const { return muxer_->connection_count(); }
  size_t buffered_bytes() const { return muxer_->buffered_bytes(); }

 private:
  Vsock(uint64_t guest_cid, std::unique_ptr<vsock::Muxer> muxer)
      : guest_cid_(guest_cid), muxer_(std::move(muxer)) {}
  void process_rx();
  void process_tx();
  void on_backend_event();

  uint64_t guest_cid_;
  std::unique_ptr<vsock::Muxer> muxer_;
  std::optional<ActiveContext> ctx_;
  bool awaiting_event_ack_ = false;
  uint16_t reset_avail_idx_ = 0;    // the event queue's avail idx when the reset was sent
  bool reset_on_activate_ = false;  // restored from a snapshot of an active device
};

}  // namespace ignition::devices::virtio
