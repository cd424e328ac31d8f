#include "devices/virtio/vsock/vsock.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "devices/virtio/request_loop.hpp"
#include "devices/virtio/vsock/persist.hpp"

namespace ignition::devices::virtio {

namespace {
constexpr uint32_t kEventTransportReset = 0;  // VIRTIO_VSOCK_EVENT_TRANSPORT_RESET
}

Result<std::unique_ptr<Vsock>> Vsock::create(const config::Vsock& config,
                                             const vsock::Limits& limits) {
  if (config.guest_cid < config::kMinGuestCid)
    return err("vsock: guest_cid {} is reserved", config.guest_cid);
  auto muxer = vsock::Muxer::create(config.guest_cid, config.uds_path, limits);
  if (!muxer.ok()) return context(muxer.error(), "vsock");
  return std::unique_ptr<Vsock>(new Vsock(config.guest_cid, std::move(muxer).value()));
}

void Vsock::read_config(uint64_t offset, std::span<uint8_t> data) {
  // struct virtio_vsock_config { le64 guest_cid; }
  std::memset(data.data(), 0, data.size());
  uint8_t config[8];
  std::memcpy(config, &guest_cid_, sizeof(config));
  if (offset >= sizeof(config)) return;
  std::memcpy(data.data(), config + offset, std::min<size_t>(data.size(), sizeof(config) - offset));
}

Result<void> Vsock::activate(const ActiveContext& ctx) {
  if (ctx.queues.size() != 3) return err("vsock needs 3 queues, got {}", ctx.queues.size());
  for (size_t i = 0; i < ctx.queues.size(); ++i) {
    if (!ctx.queues[i].config().ready) return err("vsock queue {} is not ready", i);
  }
  IGN_TRY(muxer_->activate());
  ctx_.emplace(ctx);
  awaiting_event_ack_ = false;
  if (std::exchange(reset_on_activate_, false)) {
    // Firecracker sends it too and carries on without: the guest then keeps stale sockets
    // that the host side no longer knows, and they fail on their next packet.
    if (auto sent = send_transport_reset(); !sent.ok())
      spdlog::warn("virtio-vsock: after restore: {}", sent.error().message);
  }
  return {};
}

void Vsock::reset() {
  muxer_->reset();
  ctx_.reset();
  awaiting_event_ack_ = false;
  reset_on_activate_ = false;
}

std::vector<uint8_t> Vsock::save_state() const {
  return vsock::encode_state({guest_cid_, ctx_.has_value()});
}

Result<void> Vsock::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(vsock::VsockState saved, vsock::decode_state(state));
  if (saved.guest_cid != guest_cid_)
    return err("vsock: the snapshot's guest CID is {}, this device's {}", saved.guest_cid,
               guest_cid_);
  reset_on_activate_ = saved.active;
  return {};
}

Result<void> Vsock::register_events(EventRegistrar& registrar) {
  return registrar.add(muxer_->epoll_fd(), EPOLLIN, [this](uint32_t) { on_backend_event(); });
}

void Vsock::on_backend_event() {
  if (!ctx_) return;
  muxer_->process_events();
  process_rx();
}

void Vsock::process_queue(uint16_t index) {
  if (!ctx_) return;
  switch (index) {
    case kTxQueue:
      process_tx();
      break;
    case kEventQueue:
      // The driver handled the reset when it gives the event buffer back; a kick alone
      // (a spurious one, or one replayed after a restore) does not say so.
      if (awaiting_event_ack_) {
        auto idx = ctx_->queues[kEventQueue].avail_idx(ctx_->memory);
        if (!idx.ok() || *idx != reset_avail_idx_) awaiting_event_ack_ = false;
      }
      break;
    default:
      break;
  }
  // Every kick may have made room for, or created, packets for the guest.
  process_rx();
}

void Vsock::process_rx() {
  if (!ctx_ || awaiting_event_ack_ || !muxer_->has_pending_rx()) return;
  serve_requests(*ctx_, kRxQueue, "virtio-vsock rx",
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   if (!muxer_->has_pending_rx()) return std::optional<uint32_t>();
                   auto pkt = vsock::RxPacket::from_chain(ctx_->memory, chain);
                   if (!pkt.ok()) {
                     // Returned empty: the driver loses a buffer, nobody loses data.
                     spdlog::debug("virtio-vsock rx: {}", pkt.error().message);
                     return std::optional<uint32_t>(0);
                   }
                   if (!muxer_->fill_rx(*pkt)) {
                     // A header-only buffer cannot carry the bytes that are waiting: hand
                     // it back empty rather than let it block the ring.
                     if (pkt->capacity() == 0) return std::optional<uint32_t>(0);
                     return std::optional<uint32_t>();
                   }
                   return std::optional<uint32_t>(pkt->commit());
                 });
}

void Vsock::process_tx() {
  serve_requests(*ctx_, kTxQueue, "virtio-vsock tx",
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   auto hdr = vsock::read_tx_header(ctx_->memory, chain);
                   if (!hdr.ok()) {
                     spdlog::debug("virtio-vsock tx: {}", hdr.error().message);
                     return std::optional<uint32_t>(0);
                   }
                   auto pkt = vsock::read_tx_payload(ctx_->memory, chain, *hdr);
                   if (!pkt.ok()) {
                     spdlog::debug("virtio-vsock tx: {}", pkt.error().message);
                     muxer_->on_malformed_packet(*hdr);
                   } else {
                     muxer_->on_guest_packet(*pkt);
                   }
                   return std::optional<uint32_t>(0);
                 });
}

Result<void> Vsock::send_transport_reset() {
  if (!ctx_) return err("vsock: transport reset while the device is not active");
  Queue& queue = ctx_->queues[kEventQueue];
  auto popped = queue.pop(ctx_->memory);
  if (!popped.ok()) {
    ctx_->interrupt.needs_reset();
    return context(popped.error(), "vsock event queue");
  }
  if (!*popped) return err("vsock: the driver left no event buffer for a transport reset");
  const DescriptorChain& chain = **popped;
  bool fits = chain.readable_count == 0 && !chain.buffers.empty() && chain.buffers[0].len >= 4;
  if (fits) IGN_TRY(ctx_->memory.write_obj<uint32_t>(chain.buffers[0].gpa, kEventTransportReset));
  if (auto used = queue.add_used(ctx_->memory, chain.head, fits ? 4 : 0); !used.ok()) {
    ctx_->interrupt.needs_reset();
    return context(used.error(), "vsock event queue");
  }
  if (!fits) return err("vsock: the driver's event buffer cannot hold an event");
  // The driver forgets every socket on this event; the host side follows suit.
  muxer_->reset(/*keep_listening=*/true);
  awaiting_event_ack_ = true;
  auto avail = queue.avail_idx(ctx_->memory);
  reset_avail_idx_ = avail.ok() ? *avail : 0;
  auto notify = queue.needs_interrupt(ctx_->memory);
  if (!notify.ok() || *notify) ctx_->interrupt.used_ring();
  return {};
}

}  // namespace ignition::devices::virtio
