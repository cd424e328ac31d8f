#include "devices/virtio/net/net.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <array>
#include <cstring>

#include <spdlog/spdlog.h>

#include "devices/virtio/limiter_state.hpp"
#include "devices/virtio/net/checksum.hpp"
#include "devices/virtio/net/persist.hpp"
#include "devices/virtio/net/rx.hpp"

namespace ignition::devices::virtio {

using namespace net;

namespace {

constexpr uint16_t kMinMtu = 68;

// Firecracker's set: every offload passes through the TAP untouched. MAC and MTU are
// offered when configured.
constexpr uint64_t kBaseFeatures =
    kFeatureCsum | kFeatureGuestCsum | kFeatureGuestTso4 | kFeatureGuestTso6 | kFeatureGuestUfo |
    kFeatureHostTso4 | kFeatureHostTso6 | kFeatureHostUfo | kFeatureMrgRxbuf | kFeatureRingEventIdx;

void bump(NetMetrics::Counter& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

// What the host may send the guest: exactly the receive offloads the driver accepted.
// TSO and UFO ride on checksum offload, and the kernel refuses them without it.
uint32_t tap_offload_for(uint64_t acked) {
  if (!(acked & kFeatureGuestCsum)) return 0;
  uint32_t flags = kTapOffloadCsum;
  if (acked & kFeatureGuestTso4) flags |= kTapOffloadTso4;
  if (acked & kFeatureGuestTso6) flags |= kTapOffloadTso6;
  if ((acked & kFeatureGuestEcn) && (acked & (kFeatureGuestTso4 | kFeatureGuestTso6)))
    flags |= kTapOffloadTsoEcn;
  if (acked & kFeatureGuestUfo) flags |= kTapOffloadUfo;
  return flags;
}

}  // namespace

Result<std::unique_ptr<Net>> Net::create(const config::NetworkInterface& cfg) {
  auto tap = Tap::open(cfg.host_dev_name);
  if (!tap.ok()) return context(tap.error(), fmt::format("network interface {}", cfg.iface_id));
  return create(cfg, std::move(tap).value());
}

Result<std::unique_ptr<Net>> Net::create(const config::NetworkInterface& cfg, Tap tap) {
  if (cfg.mtu && *cfg.mtu < kMinMtu)
    return err("network interface {}: MTU {} is below {}", cfg.iface_id, *cfg.mtu, kMinMtu);
  IGN_ASSIGN_OR_RETURN(auto rx,
                       RateLimiter::create(cfg.rx_rate_limiter.value_or(config::RateLimiter{})));
  IGN_ASSIGN_OR_RETURN(auto tx,
                       RateLimiter::create(cfg.tx_rate_limiter.value_or(config::RateLimiter{})));
  return std::unique_ptr<Net>(new Net(cfg, std::move(tap), std::move(rx), std::move(tx)));
}

Net::Net(const config::NetworkInterface& cfg, Tap tap, RateLimiter rx, RateLimiter tx)
    : id_(cfg.iface_id),
      tap_(std::move(tap)),
      guest_mac_(cfg.guest_mac),
      rx_frame_(kMaxFrameSize),
      rx_limiter_(std::move(rx)),
      tx_limiter_(std::move(tx)) {
  features_ = kBaseFeatures;
  if (guest_mac_) {
    features_ |= kFeatureMac;
    std::memcpy(config_.mac, guest_mac_->bytes.data(), sizeof(config_.mac));
  }
  if (cfg.mtu) {
    features_ |= kFeatureMtu;
    config_.mtu = *cfg.mtu;
  }
}

std::vector<uint8_t> Net::save_state() const {
  NetState state;
  state.iface_id = id_;
  if (guest_mac_) state.mac = guest_mac_->bytes;
  if (features_ & kFeatureMtu) state.mtu = config_.mtu;
  state.features = features_;
  state.rx_rate_limiter = rx_rate_limiter();
  state.tx_rate_limiter = tx_rate_limiter();
  return encode_state(state);
}

void Net::set_guest_mac(const config::MacAddress& mac) {
  if (!guest_mac_) return;
  guest_mac_ = mac;
  std::memcpy(config_.mac, mac.bytes.data(), sizeof(config_.mac));
}

Result<void> Net::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(NetState saved, decode_state(state));
  if (saved.iface_id != id_)
    return err("the snapshot holds network interface {}, not {}", saved.iface_id, id_);
  if (saved.mtu && *saved.mtu < kMinMtu)
    return err("network interface {}: MTU {} is below {}", id_, *saved.mtu, kMinMtu);
  uint64_t features = kBaseFeatures | (saved.mac ? kFeatureMac : 0) | (saved.mtu ? kFeatureMtu : 0);
  if (saved.features != features)
    return err("network interface {}: saved features {:#x}, its MAC and MTU make {:#x}", id_,
               saved.features, features);
  features_ = features;
  config_ = {};
  guest_mac_.reset();
  if (saved.mac) {
    guest_mac_ = config::MacAddress{*saved.mac};
    std::memcpy(config_.mac, saved.mac->data(), sizeof(config_.mac));
  }
  if (saved.mtu) config_.mtu = *saved.mtu;
  std::lock_guard lock(limiter_mu_);
  rx_limiter_.update(exact_update(saved.rx_rate_limiter));
  tx_limiter_.update(exact_update(saved.tx_rate_limiter));
  return {};
}

void Net::read_config(uint64_t offset, std::span<uint8_t> data) {
  std::memset(data.data(), 0, data.size());
  if (offset >= sizeof(config_)) return;
  size_t n = std::min<size_t>(data.size(), sizeof(config_) - offset);
  std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&config_) + offset, n);
}

void Net::write_config(uint64_t offset, std::span<const uint8_t> data) {
  // Every field is read-only for a modern driver.
  spdlog::debug("virtio-net {}: ignored config write of {} bytes at {:#x}", id_, data.size(),
                offset);
}

Result<void> Net::activate(const ActiveContext& ctx) {
  auto offload = tap_.set_offload(tap_offload_for(ctx.acked_features));
  if (!offload.ok()) return context(offload.error(), fmt::format("virtio-net {}", id_));
  ctx_.emplace(ctx);
  mergeable_ = ctx.acked_features & kFeatureMrgRxbuf;
  broken_ = false;
  // Buffers posted before DRIVER_OK came with kicks nobody heard.
  process_rx();
  return {};
}

void Net::reset() {
  ctx_.reset();
  broken_ = false;
  if (rx_pending_ != 0) {
    bump(metrics_.rx_dropped);
    rx_pending_ = 0;
  }
}

void Net::process_queue(uint16_t index) {
  if (!running()) return;
  if (index == kRxQueue) process_rx();
  if (index == kTxQueue) process_tx();
}

Result<void> Net::register_events(EventRegistrar& registrar) {
  // Edge-triggered: while a frame waits for RX buffers the TAP stays readable, and a
  // level-triggered watch would spin. The RX kick resumes reading instead.
  IGN_TRY(registrar.add(tap_.fd(), EPOLLIN | EPOLLET, [this](uint32_t) {
    if (running()) process_rx();
  }));
  IGN_TRY(registrar.add(rx_limiter_.timer_fd(), EPOLLIN, [this](uint32_t) {
    on_limiter_timer(rx_limiter_);
    if (running()) process_rx();
  }));
  IGN_TRY(registrar.add(tx_limiter_.timer_fd(), EPOLLIN, [this](uint32_t) {
    on_limiter_timer(tx_limiter_);
    if (running()) process_tx();
  }));
  return {};
}

bool Net::next_rx_frame() {
  if (rx_source_) {
    size_t n = rx_source_(std::span(rx_frame_).subspan(kHdrSize));
    if (n != 0) {
      std::memset(rx_frame_.data(), 0, kHdrSize);
      rx_pending_ = kHdrSize + std::min<size_t>(n, rx_frame_.size() - kHdrSize);
      rx_from_source_ = true;
      return true;
    }
  }
  while (true) {
    auto got = tap_.read(rx_frame_);
    if (!got.ok()) {
      bump(metrics_.rx_tap_errors);
      spdlog::warn("virtio-net {}: {}", id_, got.error().message);
      return false;
    }
    if (!*got) return false;
    if (**got < kHdrSize) {
      bump(metrics_.rx_dropped);
      continue;
    }
    rx_pending_ = **got;
    rx_from_source_ = false;
    return true;
  }
}

void Net::process_rx() {
  GuestMemory& mem = ctx_->memory;
  Queue& queue = ctx_->queues[kRxQueue];
  bool used = false;
  while (true) {
    if (rx_pending_ == 0 && !next_rx_frame()) break;
    uint64_t eth_bytes = rx_pending_ - kHdrSize;
    // The VMM's own frames do not count against the guest's bandwidth (as in Firecracker).
    bool limited = !rx_from_source_;
    if (limited && !consume(rx_limiter_, eth_bytes)) {
      bump(metrics_.rx_rate_limited);
      break;
    }
    auto out = deliver_rx_frame(mem, queue, std::span(rx_frame_).first(rx_pending_), mergeable_);
    if (!out.ok()) {
      if (limited) replenish(rx_limiter_, eth_bytes);
      return fail(kRxQueue, out.error());
    }
    used |= out->used_any();
    bump(metrics_.rx_bad_chains, out->bad_chains);
    if (out->kind == RxOutcome::Kind::kNoBuffers) {
      if (limited) replenish(rx_limiter_, eth_bytes);
      bump(metrics_.rx_no_buffers);
      break;
    }
    rx_pending_ = 0;
    if (out->kind == RxOutcome::Kind::kDropped) {
      if (limited) replenish(rx_limiter_, eth_bytes);
      bump(metrics_.rx_dropped);
      continue;
    }
    bump(metrics_.rx_frames);
    bump(metrics_.rx_bytes, eth_bytes);
    if (!limited) bump(metrics_.rx_vmm_frames);
  }
  if (used) signal(kRxQueue);
}

void Net::process_tx() {
  GuestMemory& mem = ctx_->memory;
  Queue& queue = ctx_->queues[kTxQueue];
  bool used = false;
  bool filtered = false;
  while (true) {
    auto popped = queue.pop(mem);
    if (!popped.ok()) return fail(kTxQueue, popped.error());
    if (!*popped) break;
    const DescriptorChain& chain = **popped;
    auto frame = parse_tx_chain(mem, chain);
    if (!frame.ok()) {
      bump(metrics_.tx_malformed);
      spdlog::debug("virtio-net {}: dropped a TX frame: {}", id_, frame.error().message);
    } else if (!consume(tx_limiter_, frame->size - kHdrSize)) {
      queue.undo_pop();
      bump(metrics_.tx_rate_limited);
      break;
    } else {
      filtered |= transmit(*frame);
    }
    if (!add_used(kTxQueue, chain.head)) return;
    used = true;
  }
  if (used) signal(kTxQueue);
  // What the filter took may have an answer waiting (the MMDS's ARP reply, SYN-ACK, ...).
  if (filtered && rx_source_ && running()) process_rx();
}

bool Net::transmit(const TxFrame& frame) {
  uint32_t eth_bytes = frame.size - kHdrSize;
  if (guest_mac_) {
    uint8_t src[6];
    if (frame.copy_out(kHdrSize + 6, src) == sizeof(src) &&
        std::memcmp(src, guest_mac_->bytes.data(), sizeof(src)) != 0)
      bump(metrics_.tx_spoofed_mac);
  }
  if (tx_filter_ && filter_wants(frame)) {
    tx_copy_.resize(eth_bytes);
    frame.copy_out(kHdrSize, tx_copy_);
    VirtioNetHdr hdr{};
    frame.copy_out(0, std::span(reinterpret_cast<uint8_t*>(&hdr), sizeof(hdr)));
    // The filter reads the frame as a receiver would, so it needs the sum the driver left
    // to the device.
    if (hdr.flags & kHdrFlagNeedsCsum) complete_checksum(tx_copy_, hdr.csum_start, hdr.csum_offset);
    if (tx_filter_(tx_copy_)) {
      // Frames answered inside the VMM do not count against the guest's bandwidth.
      replenish(tx_limiter_, eth_bytes);
      bump(metrics_.tx_filtered);
      return true;
    }
  }
  auto written = tap_.write(frame.iov);
  if (!written.ok() || !*written) {
    bump(metrics_.tx_tap_errors);
    spdlog::debug("virtio-net {}: TAP refused a frame: {}", id_,
                  written.ok() ? "would block" : written.error().message);
    return false;
  }
  bump(metrics_.tx_frames);
  bump(metrics_.tx_bytes, eth_bytes);
  return false;
}

bool Net::filter_wants(const TxFrame& frame) const {
  if (!tx_claim_) return true;
  std::array<uint8_t, kTxPeekBytes> head{};
  size_t n = frame.copy_out(kHdrSize, head);
  return tx_claim_(std::span(head).first(n));
}

bool Net::consume(RateLimiter& limiter, uint64_t bytes) {
  std::lock_guard lock(limiter_mu_);
  if (!limiter.consume(1, TokenType::kOps)) return false;
  if (!limiter.consume(bytes, TokenType::kBytes)) {
    limiter.manual_replenish(1, TokenType::kOps);
    return false;
  }
  return true;
}

void Net::replenish(RateLimiter& limiter, uint64_t bytes) {
  std::lock_guard lock(limiter_mu_);
  limiter.manual_replenish(1, TokenType::kOps);
  limiter.manual_replenish(bytes, TokenType::kBytes);
}

void Net::on_limiter_timer(RateLimiter& limiter) {
  std::lock_guard lock(limiter_mu_);
  limiter.on_timer();
}

void Net::update_rate_limiters(const std::optional<config::RateLimiter>& rx,
                               const std::optional<config::RateLimiter>& tx) {
  std::lock_guard lock(limiter_mu_);
  if (rx) rx_limiter_.update(*rx);
  if (tx) tx_limiter_.update(*tx);
}

config::RateLimiter Net::rx_rate_limiter() const {
  std::lock_guard lock(limiter_mu_);
  return rx_limiter_.config();
}

config::RateLimiter Net::tx_rate_limiter() const {
  std::lock_guard lock(limiter_mu_);
  return tx_limiter_.config();
}

bool Net::add_used(uint16_t queue, uint16_t head) {
  auto added = ctx_->queues[queue].add_used(ctx_->memory, head, 0);
  if (!added.ok()) fail(queue, added.error());
  return added.ok();
}

void Net::signal(uint16_t queue) {
  auto notify = ctx_->queues[queue].needs_interrupt(ctx_->memory);
  if (!notify.ok()) return fail(queue, notify.error());
  if (*notify) ctx_->interrupt.used_ring();
}

void Net::fail(uint16_t queue, const Error& e) {
  spdlog::warn("virtio-net {}: queue {}: {}", id_, queue, e.message);
  broken_ = true;
  ctx_->interrupt.needs_reset();
}

}  // namespace ignition::devices::virtio
