// Post-boot changes to a running machine, on its event-loop thread: the API's PATCH requests
// for drives, network interfaces and the balloon, SendCtrlAltDel, and the counters the
// metrics file reports. Each update reaches its device under the device's transport lock and
// then records the result in config_, so GET /vm/config and snapshots show it.
#include <algorithm>

#include "devices/virtio/block/block.hpp"
#include "devices/virtio/net/net.hpp"
#include "devices/virtio/pmem/pmem.hpp"
#include "vmm/machine.hpp"

namespace ignition::vmm {

namespace {

using devices::virtio::Block;
using devices::virtio::Device;
using devices::virtio::DeviceType;
using devices::virtio::Net;
using devices::virtio::Pmem;

// The legacy keyboard interrupt (ISA IRQ 1, IOAPIC pin 1).
constexpr uint32_t kKeyboardIrq = 1;

const std::string* device_id(const Device& d) {
  switch (d.type()) {
    case DeviceType::Block:
      return &static_cast<const Block&>(d).drive_id();
    case DeviceType::Net:
      return &static_cast<const Net&>(d).id();
    case DeviceType::Pmem:
      return &static_cast<const Pmem&>(d).id();
    default:
      return nullptr;
  }
}

template <typename Count>
Count& count_for(std::vector<Count>& counts, const std::string& id) {
  auto it = std::find_if(counts.begin(), counts.end(), [&](const Count& c) { return c.id == id; });
  if (it != counts.end()) return *it;
  counts.push_back(Count{id});
  return counts.back();
}

template <typename Count>
Count find_count(const std::vector<Count>& counts, const std::string& id) {
  auto it = std::find_if(counts.begin(), counts.end(), [&](const Count& c) { return c.id == id; });
  return it != counts.end() ? *it : Count{id};
}

// A limiter with no bucket is no limiter: the configuration says so by its absence.
std::optional<config::RateLimiter> as_config(const config::RateLimiter& limits) {
  if (!limits.bandwidth && !limits.ops) return std::nullopt;
  return limits;
}

}  // namespace

bool Machine::with_virtio_device(DeviceType type, const std::string& id,
                                 const std::function<void(Device&)>& fn) const {
  bool found = false;
  for (const auto& slot : virtio_) {
    slot.transport->with_device([&](Device& d) {
      if (d.type() != type) return;
      const std::string* dev_id = device_id(d);
      if (dev_id == nullptr || *dev_id != id) return;
      found = true;
      fn(d);
    });
    if (found) return true;
  }
  return false;
}

Result<void> Machine::update_drive(const config::PartialDrive& update) {
  auto drive = std::find_if(config_.drives.begin(), config_.drives.end(),
                            [&](const config::Drive& d) { return d.drive_id == update.drive_id; });
  if (drive == config_.drives.end()) return err("no drive with id '{}'", update.drive_id);
  auto& count = count_for(drive_updates_, update.drive_id);
  ++count.count;
  Result<void> result{};
  config::RateLimiter limits;
  bool found = with_virtio_device(DeviceType::Block, update.drive_id, [&](Device& d) {
    auto& block = static_cast<Block&>(d);
    if (update.path_on_host) {
      result = block.update_path(*update.path_on_host);
      if (!result.ok()) return;
    }
    if (update.rate_limiter) block.update_rate_limiter(*update.rate_limiter);
    limits = block.rate_limiter().config();
  });
  if (!found) result = err("drive '{}' has no device", update.drive_id);
  if (!result.ok()) {
    ++count.fails;
    return result;
  }
  if (update.path_on_host) drive->path_on_host = *update.path_on_host;
  if (update.rate_limiter) drive->rate_limiter = as_config(limits);
  return {};
}

Result<void> Machine::update_pmem(const config::PartialPmem& update) {
  auto pmem = std::find_if(config_.pmem.begin(), config_.pmem.end(),
                           [&](const config::Pmem& p) { return p.id == update.id; });
  if (pmem == config_.pmem.end()) return err("no pmem device with id '{}'", update.id);
  if (!update.rate_limiter) return {};
  config::RateLimiter limits;
  bool found = with_virtio_device(DeviceType::Pmem, update.id, [&](Device& d) {
    auto& device = static_cast<Pmem&>(d);
    device.update_rate_limiter(*update.rate_limiter);
    limits = device.rate_limiter().config();
  });
  if (!found) return err("pmem '{}' has no device", update.id);
  pmem->rate_limiter = as_config(limits);
  return {};
}

Result<void> Machine::update_network_interface(const config::PartialNetworkInterface& update) {
  auto iface = std::find_if(
      config_.network_interfaces.begin(), config_.network_interfaces.end(),
      [&](const config::NetworkInterface& n) { return n.iface_id == update.iface_id; });
  if (iface == config_.network_interfaces.end())
    return err("no network interface with id '{}'", update.iface_id);
  auto& count = count_for(nic_updates_, update.iface_id);
  ++count.count;
  config::RateLimiter rx, tx;
  bool found = with_virtio_device(DeviceType::Net, update.iface_id, [&](Device& d) {
    auto& net = static_cast<Net&>(d);
    net.update_rate_limiters(update.rx_rate_limiter, update.tx_rate_limiter);
    rx = net.rx_rate_limiter();
    tx = net.tx_rate_limiter();
  });
  if (!found) {
    ++count.fails;
    return err("network interface '{}' has no device", update.iface_id);
  }
  if (update.rx_rate_limiter) iface->rx_rate_limiter = as_config(rx);
  if (update.tx_rate_limiter) iface->tx_rate_limiter = as_config(tx);
  return {};
}

Result<void> Machine::update_balloon(const config::BalloonUpdate& update) {
  if (balloon_ == nullptr || !config_.balloon) return err("no balloon device");
  IGN_TRY(balloon_->update_target(update.amount_mib));
  config_.balloon->amount_mib = update.amount_mib;
  return {};
}

Result<void> Machine::update_balloon_statistics(const config::BalloonStatsUpdate& update) {
  if (balloon_ == nullptr || !config_.balloon) return err("no balloon device");
  IGN_TRY(balloon_->update_stats_interval(update.stats_polling_interval_s));
  config_.balloon->stats_polling_interval_s = update.stats_polling_interval_s;
  return {};
}

Result<config::BalloonStats> Machine::balloon_statistics() const {
  if (balloon_ == nullptr) return err("no balloon device");
  return balloon_->latest_stats();
}

Result<void> Machine::ensure_keyboard_irq() {
  if (i8042_->has_keyboard_irq()) return {};
  IGN_ASSIGN_OR_RETURN(auto fd, EventFd::create());
  IGN_TRY(vm_->register_irqfd(fd.fd(), kKeyboardIrq));
  i8042_->set_keyboard_irq(devices::IrqLine(std::move(fd), kKeyboardIrq));
  return {};
}

Result<void> Machine::send_ctrl_alt_del() {
  IGN_TRY(ensure_keyboard_irq());
  return i8042_->trigger_ctrl_alt_del();
}

void Machine::start_paused() {
  start_paused_ = true;
}

Machine::Counters Machine::counters() {
  Counters out;
  for (const auto& slot : virtio_) {
    slot.transport->with_device([&](Device& d) {
      if (d.type() == DeviceType::Block) {
        const auto& block = static_cast<const Block&>(d);
        auto c = block.counters();
        auto updates = find_count(drive_updates_, block.drive_id());
        out.drives.push_back({block.drive_id(), c.reads, c.writes, c.read_bytes, c.write_bytes,
                              c.flushes, c.io_errors, c.invalid_requests, c.throttled,
                              updates.count, updates.fails});
      } else if (d.type() == DeviceType::Net) {
        const auto& net = static_cast<const Net&>(d);
        const auto& m = net.metrics();
        auto updates = find_count(nic_updates_, net.id());
        out.nics.push_back({net.id(), m.rx_frames, m.rx_bytes, m.rx_dropped, m.rx_no_buffers,
                            m.rx_tap_errors, m.rx_rate_limited, m.tx_frames, m.tx_bytes,
                            m.tx_malformed, m.tx_tap_errors, m.tx_spoofed_mac, m.tx_rate_limited,
                            updates.count, updates.fails});
      }
    });
  }
  if (balloon_ != nullptr) out.balloon = balloon_->counters();
  out.i8042 = i8042_->counters();
  for (const auto& runner : runners_) out.vcpu_exits += runner->exits();
  std::lock_guard lock(stop_mu_);
  if (vcpu_stop_ && vcpu_stop_->kind == VcpuStop::Kind::Fatal) out.vcpu_failures = 1;
  return out;
}

}  // namespace ignition::vmm
