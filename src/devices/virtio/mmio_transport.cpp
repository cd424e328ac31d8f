#include "devices/virtio/mmio_transport.hpp"

#include <cstring>

#include <spdlog/spdlog.h>

#include "snapshot/codec.hpp"

namespace ignition::devices::virtio {

namespace {

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVendorId = 0x4e474954;  // "TIGN"

// Register offsets (virtio spec 4.2.2).
enum : uint64_t {
  kMagicValue = 0x000,
  kVersionReg = 0x004,
  kDeviceId = 0x008,
  kVendorIdReg = 0x00c,
  kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014,
  kDriverFeatures = 0x020,
  kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030,
  kQueueNumMax = 0x034,
  kQueueNum = 0x038,
  kQueueReady = 0x044,
  kQueueNotify = 0x050,
  kInterruptStatus = 0x060,
  kInterruptAck = 0x064,
  kStatus = 0x070,
  kQueueDescLow = 0x080,
  kQueueDescHigh = 0x084,
  kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094,
  kQueueDeviceLow = 0x0a0,
  kQueueDeviceHigh = 0x0a4,
  kConfigGeneration = 0x0fc,
  kConfig = 0x100,
};

void set_low(uint64_t& field, uint32_t value) {
  field = (field & ~0xffffffffULL) | value;
}
void set_high(uint64_t& field, uint32_t value) {
  field = (field & 0xffffffffULL) | (uint64_t{value} << 32);
}

std::string_view type_name(uint32_t type) {
  switch (static_cast<DeviceType>(type)) {
    case DeviceType::Net:
      return "net";
    case DeviceType::Block:
      return "block";
    case DeviceType::Rng:
      return "rng";
    case DeviceType::Balloon:
      return "balloon";
    case DeviceType::Vsock:
      return "vsock";
    case DeviceType::Pmem:
      return "pmem";
  }
  return "unknown";
}

// The transport's part of a snapshot. Field order is the encoding.
struct TransportState {
  uint32_t device_type = 0;
  uint32_t status = 0;
  bool active = false;
  uint64_t driver_features = 0;
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  std::span<const QueueState> queues;
  std::span<const uint8_t> device;  // the device's own state
};

// Bytes one encoded QueueState takes, to bound the queue count before allocating.
constexpr size_t kQueueStateSize = 2 + 2 + 1 + 3 * 8 + 2 + 2 + 1 + 2 + 1;

void put_queue(snapshot::Encoder& e, const QueueState& q) {
  e.u16(q.max_size);
  e.u16(q.config.size);
  e.boolean(q.config.ready);
  e.u64(q.config.desc_addr);
  e.u64(q.config.avail_addr);
  e.u64(q.config.used_addr);
  e.u16(q.next_avail);
  e.u16(q.next_used);
  e.boolean(q.event_idx);
  e.u16(q.signalled_used);
  e.boolean(q.signalled_valid);
}

QueueState get_queue(snapshot::Decoder& d) {
  QueueState q;
  q.max_size = d.u16();
  q.config.size = d.u16();
  q.config.ready = d.boolean();
  q.config.desc_addr = d.u64();
  q.config.avail_addr = d.u64();
  q.config.used_addr = d.u64();
  q.next_avail = d.u16();
  q.next_used = d.u16();
  q.event_idx = d.boolean();
  q.signalled_used = d.u16();
  q.signalled_valid = d.boolean();
  return q;
}

std::vector<uint8_t> encode(const TransportState& s) {
  snapshot::Encoder e;
  e.u32(s.device_type);
  e.u32(s.status);
  e.boolean(s.active);
  e.u64(s.driver_features);
  e.u32(s.device_features_sel);
  e.u32(s.driver_features_sel);
  e.u32(s.queue_sel);
  e.u32(s.interrupt_status);
  e.u32(s.config_generation);
  e.u64(s.queues.size());
  for (const QueueState& q : s.queues) put_queue(e, q);
  e.bytes(s.device);
  return std::move(e).take();
}

// The queues go to `queue_storage`, reused from one decode to the next so that a reset's
// roll back allocates nothing.
Result<TransportState> decode(std::span<const uint8_t> bytes,
                              std::vector<QueueState>& queue_storage) {
  snapshot::Decoder d(bytes);
  TransportState s;
  s.device_type = d.u32();
  s.status = d.u32();
  s.active = d.boolean();
  s.driver_features = d.u64();
  s.device_features_sel = d.u32();
  s.driver_features_sel = d.u32();
  s.queue_sel = d.u32();
  s.interrupt_status = d.u32();
  s.config_generation = d.u32();
  queue_storage.resize(d.count(kQueueStateSize));
  for (QueueState& q : queue_storage) q = get_queue(d);
  s.queues = queue_storage;
  s.device = d.bytes_view();
  IGN_TRY(d.finish());
  return s;
}

}  // namespace

MmioTransport::MmioTransport(std::unique_ptr<Device> device, GuestMemory& memory, IrqLine irq)
    : device_(std::move(device)), memory_(memory), irq_(std::move(irq)) {
  for (uint16_t max : device_->queue_max_sizes()) queues_.emplace_back(max);
  decoded_queues_.reserve(queues_.size());
}

uint32_t MmioTransport::device_status() const {
  std::lock_guard lock(mu_);
  return status_;
}

bool MmioTransport::activated() const {
  std::lock_guard lock(mu_);
  return active_;
}

void MmioTransport::with_device(const std::function<void(Device&)>& fn) {
  std::lock_guard lock(mu_);
  fn(*device_);
}

Result<std::vector<uint8_t>> MmioTransport::save_state() const {
  std::lock_guard lock(mu_);
  TransportState s;
  s.device_type = static_cast<uint32_t>(device_->type());
  s.status = status_;
  s.active = active_;
  s.driver_features = driver_features_;
  s.device_features_sel = device_features_sel_;
  s.driver_features_sel = driver_features_sel_;
  s.queue_sel = queue_sel_;
  s.interrupt_status = interrupt_status_.load();
  s.config_generation = config_generation_;
  std::vector<QueueState> queues;
  for (const Queue& q : queues_) queues.push_back(q.save_state());
  s.queues = queues;
  std::vector<uint8_t> device = device_->save_state();
  s.device = device;
  return encode(s);
}

Result<void> MmioTransport::restore_state(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  if (status_ != 0 || active_)
    return err("virtio-{} state: the transport is in use; restore needs a fresh one",
               type_name(static_cast<uint32_t>(device_->type())));
  return restore_locked(bytes);
}

Result<void> MmioTransport::roll_back(std::span<const uint8_t> bytes) {
  std::lock_guard lock(mu_);
  reset_locked();
  return restore_locked(bytes);
}

Result<void> MmioTransport::restore_locked(std::span<const uint8_t> bytes) {
  const uint32_t type = static_cast<uint32_t>(device_->type());
  auto fail = [type](const Error& e) {
    return context(e, fmt::format("virtio-{} state", type_name(type)));
  };
  auto decoded = decode(bytes, decoded_queues_);
  if (!decoded.ok()) return fail(decoded.error());
  const TransportState& s = *decoded;
  if (s.device_type != type)
    return fail(
        err("the snapshot holds a virtio-{} device ({})", type_name(s.device_type), s.device_type));
  if (s.queues.size() != queues_.size())
    return fail(err("{} queues saved, the device has {}", s.queues.size(), queues_.size()));
  if (s.interrupt_status & ~(kInterruptUsedRing | kInterruptConfigChange))
    return fail(err("invalid interrupt status {:#x}", s.interrupt_status));
  constexpr uint32_t kStarted = kStatusFeaturesOk | kStatusDriverOk;
  if (s.active && (s.status & kStarted) != kStarted)
    return fail(err("an active device with status {:#x}", s.status));

  // The device first: what it offers may depend on its state.
  if (auto restored = device_->restore_state(s.device); !restored.ok())
    return fail(restored.error());
  if (s.status & kStatusFeaturesOk) {
    uint64_t offered = device_->features() | kFeatureVersion1;
    if ((s.driver_features & ~offered) || !(s.driver_features & kFeatureVersion1))
      return fail(err("negotiated features {:#x} are not a modern subset of the offered {:#x}",
                      s.driver_features, offered));
  }
  const bool event_idx = s.driver_features & kFeatureRingEventIdx;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const QueueState& q = s.queues[i];
    bool in_use = s.active && q.config.ready;
    if (in_use && q.event_idx != event_idx)
      return fail(err("queue {}: event index {} but negotiated {}", i, q.event_idx, event_idx));
    if (auto restored = queues_[i].restore_state(q, memory_, in_use); !restored.ok())
      return fail(context(restored.error(), fmt::format("queue {}", i)));
  }

  status_ = s.status;
  driver_features_ = s.driver_features;
  device_features_sel_ = s.device_features_sel;
  driver_features_sel_ = s.driver_features_sel;
  queue_sel_ = s.queue_sel;
  interrupt_status_.store(s.interrupt_status);
  config_generation_ = s.config_generation;
  if (!s.active) return {};
  auto activated = device_->activate({memory_, queues_, *this, driver_features_});
  if (!activated.ok()) return fail(context(activated.error(), "activation"));
  active_ = true;
  return {};
}

void MmioTransport::signal_used_queues() {
  std::lock_guard lock(mu_);
  if (!active_ || (status_ & kStatusNeedsReset)) return;
  for (size_t i = 0; i < queues_.size(); ++i) {
    // A device may ask for a reset while catching up; the rest is then moot.
    if (status_ & kStatusNeedsReset) return;
    if (queues_[i].config().ready) device_->process_queue(static_cast<uint16_t>(i));
  }
  if (status_ & kStatusNeedsReset) return;
  used_ring();
}

void MmioTransport::read(uint64_t offset, std::span<uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset >= kConfig) {
    device_->read_config(offset - kConfig, data);
    return;
  }
  // Registers are 32-bit; other widths read as zero (the spec makes them undefined).
  uint32_t value = data.size() == 4 && offset % 4 == 0 ? read_register(offset) : 0;
  std::memset(data.data(), 0, data.size());
  std::memcpy(data.data(), &value, std::min<size_t>(4, data.size()));
}

void MmioTransport::write(uint64_t offset, std::span<const uint8_t> data) {
  std::lock_guard lock(mu_);
  if (offset >= kConfig) {
    device_->write_config(offset - kConfig, data);
    config_generation_++;
    return;
  }
  if (data.size() != 4 || offset % 4 != 0) return;
  uint32_t value;
  std::memcpy(&value, data.data(), 4);
  write_register(offset, value);
}

Queue* MmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  Queue* q = selected_queue();
  switch (offset) {
    case kMagicValue:
      return kMagic;
    case kVersionReg:
      return kVersion;
    case kDeviceId:
      return static_cast<uint32_t>(device_->type());
    case kVendorIdReg:
      return kVendorId;
    case kDeviceFeatures: {
      uint64_t features = device_->features() | kFeatureVersion1;
      return device_features_sel_ == 0   ? static_cast<uint32_t>(features)
             : device_features_sel_ == 1 ? static_cast<uint32_t>(features >> 32)
                                         : 0;
    }
    case kQueueNumMax:
      return q ? q->max_size() : 0;
    case kQueueReady:
      return q && q->config().ready ? 1 : 0;
    case kInterruptStatus:
      return interrupt_status_.load();
    case kStatus:
      return status_;
    case kConfigGeneration:
      return config_generation_;
    default:
      return 0;
  }
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
  Queue* q = selected_queue();
  // Queue layout may change only while that queue is not ready, and only before the
  // device is running; anything else is ignored, as a real device would.
  bool queue_writable = q && !q->config().ready && !active_;
  bool features_writable = (status_ & kStatusDriver) && !(status_ & kStatusFeaturesOk);
  switch (offset) {
    case kDeviceFeaturesSel:
      device_features_sel_ = value;
      break;
    case kDriverFeaturesSel:
      driver_features_sel_ = value;
      break;
    case kDriverFeatures:
      if (!features_writable) break;
      if (driver_features_sel_ == 0) set_low(driver_features_, value);
      if (driver_features_sel_ == 1) set_high(driver_features_, value);
      break;
    case kQueueSel:
      queue_sel_ = value;
      break;
    case kQueueNum:
      if (queue_writable)
        q->config().size = static_cast<uint16_t>(std::min<uint32_t>(value, 0xffff));
      break;
    case kQueueReady:
      if (q && !active_) q->config().ready = value == 1;
      break;
    case kQueueDescLow:
      if (queue_writable) set_low(q->config().desc_addr, value);
      break;
    case kQueueDescHigh:
      if (queue_writable) set_high(q->config().desc_addr, value);
      break;
    case kQueueDriverLow:
      if (queue_writable) set_low(q->config().avail_addr, value);
      break;
    case kQueueDriverHigh:
      if (queue_writable) set_high(q->config().avail_addr, value);
      break;
    case kQueueDeviceLow:
      if (queue_writable) set_low(q->config().used_addr, value);
      break;
    case kQueueDeviceHigh:
      if (queue_writable) set_high(q->config().used_addr, value);
      break;
    case kQueueNotify:
      if (active_ && !(status_ & kStatusNeedsReset) && value < queues_.size())
        device_->process_queue(static_cast<uint16_t>(value));
      break;
    case kInterruptAck:
      interrupt_status_.fetch_and(~value);
      break;
    case kStatus:
      set_status(value);
      break;
    default:
      break;
  }
}

void MmioTransport::set_status(uint32_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  // FEATURES_OK sticks only if the driver accepted a subset of what we offered,
  // including VERSION_1 (this transport is modern only).
  if ((value & kStatusFeaturesOk) && !(status_ & kStatusFeaturesOk)) {
    uint64_t offered = device_->features() | kFeatureVersion1;
    if ((driver_features_ & ~offered) || !(driver_features_ & kFeatureVersion1))
      value &= ~kStatusFeaturesOk;
  }
  bool starting = (value & kStatusDriverOk) && !(status_ & kStatusDriverOk);
  status_ = value | (status_ & kStatusNeedsReset);
  if (!starting) return;
  if (!(status_ & kStatusFeaturesOk)) {
    status_ |= kStatusFailed;
    return;
  }
  for (size_t i = 0; i < queues_.size(); ++i) {
    auto& q = queues_[i];
    if (!q.config().ready) continue;
    if (auto valid = q.validate(memory_); !valid.ok()) {
      spdlog::warn("virtio {}: queue {}: {}", static_cast<uint32_t>(device_->type()), i,
                   valid.error().message);
      needs_reset();
      return;
    }
    q.activate(driver_features_ & kFeatureRingEventIdx);
  }
  auto activated = device_->activate({memory_, queues_, *this, driver_features_});
  active_ = activated.ok();
  if (!activated.ok()) {
    spdlog::warn("virtio {}: activation failed: {}", static_cast<uint32_t>(device_->type()),
                 activated.error().message);
    needs_reset();
  }
}

void MmioTransport::reset_locked() {
  if (active_) device_->reset();
  active_ = false;
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  interrupt_status_.store(0);
  for (auto& q : queues_) q.reset();
}

void MmioTransport::notify(uint16_t queue) {
  std::lock_guard lock(mu_);
  if (active_ && queue < queues_.size() && !(status_ & kStatusNeedsReset))
    device_->process_queue(queue);
}

Result<void> MmioTransport::register_events(EventRegistrar& registrar) {
  // Wrap the registrar so backend handlers run under this transport's lock.
  struct Locked final : EventRegistrar {
    Locked(EventRegistrar& inner, std::mutex& mu) : inner(inner), mu(mu) {}
    Result<void> add(int fd, uint32_t events, Handler handler) override {
      return inner.add(fd, events, [this, h = std::move(handler)](uint32_t ev) {
        std::lock_guard lock(mu);
        h(ev);
      });
    }
    void remove(int fd) override { inner.remove(fd); }
    EventRegistrar& inner;
    std::mutex& mu;
  };
  locked_registrar_ = std::make_unique<Locked>(registrar, mu_);
  std::lock_guard lock(mu_);
  return device_->register_events(*locked_registrar_);
}

void MmioTransport::used_ring() {
  interrupt_status_.fetch_or(kInterruptUsedRing);
  irq_.trigger();
}

void MmioTransport::config_changed() {
  interrupt_status_.fetch_or(kInterruptConfigChange);
  config_generation_++;
  irq_.trigger();
}

void MmioTransport::needs_reset() {
  // The device stays inert (no kicks reach it) until the driver resets it.
  status_ |= kStatusNeedsReset;
  config_changed();
}

}  // namespace ignition::devices::virtio
