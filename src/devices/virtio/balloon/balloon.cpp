#include "devices/virtio/balloon/balloon.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "devices/virtio/balloon/persist.hpp"
#include "devices/virtio/balloon/reclaim.hpp"
#include "devices/virtio/balloon/request.hpp"
#include "devices/virtio/request_loop.hpp"

namespace ignition::devices::virtio {

namespace {

constexpr const char* kName = "virtio-balloon";
constexpr uint64_t kNsPerSec = 1'000'000'000;

// Guest mistakes are counted; only the first of each kind is a warning, so a hostile
// guest cannot flood the log.
void note_guest_error(std::atomic<uint64_t>& counter, uint64_t n, std::string_view what,
                      const Error& e) {
  if (counter.fetch_add(n, std::memory_order_relaxed) == 0)
    spdlog::warn("{}: {}: {} (further ones are only counted)", kName, what, e.message);
  else
    spdlog::debug("{}: {}: {}", kName, what, e.message);
}

void bump(std::atomic<uint64_t>& counter, uint64_t n = 1) {
  counter.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

Result<std::unique_ptr<Balloon>> Balloon::create(const config::Balloon& cfg,
                                                 uint64_t guest_mem_mib) {
  if (cfg.free_page_hinting) return err("balloon: free page hinting is not supported");
  if (cfg.amount_mib > guest_mem_mib)
    return err("balloon: amount_mib {} is more than the guest's {} MiB", cfg.amount_mib,
               guest_mem_mib);
  if (cfg.amount_mib > UINT32_MAX / kBalloonPagesPerMib)
    return err("balloon: amount_mib {} does not fit the device's page count", cfg.amount_mib);

  uint64_t features = kFeatureVersion1;
  if (cfg.deflate_on_oom) features |= kBalloonFeatureDeflateOnOom;
  if (cfg.free_page_reporting) features |= kBalloonFeatureReporting;
  UniqueFd timer;
  if (cfg.stats_polling_interval_s > 0) {
    // The spec wants no statistics queue at all when statistics are off.
    features |= kBalloonFeatureStatsVq;
    timer.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!timer.valid()) return err("balloon: timerfd_create: {}", errno_string());
  }
  IGN_ASSIGN_OR_RETURN(auto wake, EventFd::create());
  return std::unique_ptr<Balloon>(new Balloon(features, cfg.amount_mib * kBalloonPagesPerMib,
                                              cfg.stats_polling_interval_s, guest_mem_mib,
                                              std::move(timer), std::move(wake)));
}

std::vector<uint16_t> Balloon::queue_max_sizes() const {
  size_t count = 2 + (stats_enabled() ? 1 : 0) + (reporting_enabled() ? 1 : 0);
  return std::vector<uint16_t>(count, kQueueSize);
}

void Balloon::read_config(uint64_t offset, std::span<uint8_t> data) {
  uint8_t space[kConfigSize];
  {
    std::lock_guard lock(mu_);
    std::memcpy(space, &num_pages_, 4);
    std::memcpy(space + 4, &actual_pages_, 4);
  }
  std::memset(data.data(), 0, data.size());
  if (offset >= kConfigSize) return;
  std::memcpy(data.data(), space + offset, std::min<uint64_t>(data.size(), kConfigSize - offset));
}

void Balloon::write_config(uint64_t offset, std::span<const uint8_t> data) {
  // Only `actual` belongs to the driver; num_pages is the VMM's.
  constexpr uint64_t kActual = 4;
  std::lock_guard lock(mu_);
  uint8_t actual[4];
  std::memcpy(actual, &actual_pages_, 4);
  for (size_t i = 0; i < data.size(); ++i) {
    if (offset >= kConfigSize || i >= kConfigSize - offset) break;
    uint64_t at = offset + i;
    if (at >= kActual) actual[at - kActual] = data[i];
  }
  std::memcpy(&actual_pages_, actual, 4);
}

Result<void> Balloon::activate(const ActiveContext& ctx) {
  if (ctx.queues.size() < 2 || !ctx.queues[kInflateQueue].config().ready ||
      !ctx.queues[kDeflateQueue].config().ready)
    return err("the driver did not set up the inflate and deflate queues");
  bool stats = stats_enabled() && (ctx.acked_features & kBalloonFeatureStatsVq);
  if (stats && !ctx.queues[kStatsQueue].config().ready)
    return err("the driver accepted statistics but did not set up their queue");
  std::optional<uint16_t> held = std::exchange(restored_stats_head_, std::nullopt);
  if (held && (!stats || *held >= ctx.queues[kStatsQueue].config().size))
    return err("the saved statistics buffer {} is not in a statistics queue", *held);
  std::optional<uint16_t> reporting;
  if (reporting_enabled() && (ctx.acked_features & kBalloonFeatureReporting)) {
    reporting = static_cast<uint16_t>(stats ? kStatsQueue + 1 : kStatsQueue);
    if (*reporting >= ctx.queues.size() || !ctx.queues[*reporting].config().ready)
      return err("the driver accepted free page reporting but did not set up its queue");
  }
  watch_.inner = &ctx.interrupt;
  watch_.broken = false;
  ctx_.emplace(ActiveContext{ctx.memory, ctx.queues, watch_, ctx.acked_features});
  stats_head_ = held;
  reporting_queue_ = reporting;
  {
    std::lock_guard lock(mu_);
    active_ = true;
    stats_running_ = stats;
    if (stats) arm_stats_timer_locked(uint64_t{stats_interval_s_} * kNsPerSec);
  }
  // Linux posts its first report while probing, before DRIVER_OK, so it waits in the ring.
  if (stats) process_stats();
  return {};
}

void Balloon::reset() {
  ctx_.reset();
  watch_.broken = false;
  stats_head_.reset();
  restored_stats_head_.reset();
  reporting_queue_.reset();
  std::lock_guard lock(mu_);
  active_ = false;
  stats_running_ = false;
  actual_pages_ = 0;
  stats_ = {};
  if (stats_enabled()) arm_stats_timer_locked(0);
}

std::vector<uint8_t> Balloon::save_state() const {
  balloon::BalloonState state;
  state.features = features_;
  state.stats_head = stats_head_;
  std::lock_guard lock(mu_);
  state.num_pages = num_pages_;
  state.actual_pages = actual_pages_;
  state.stats_interval_s = stats_interval_s_;
  state.stats = stats_;
  return balloon::encode_state(state);
}

Result<void> Balloon::restore_state(std::span<const uint8_t> state) {
  IGN_ASSIGN_OR_RETURN(balloon::BalloonState saved, balloon::decode_state(state));
  if (saved.features != features_)
    return err("balloon: the snapshot's features {:#x} differ from this device's {:#x}",
               saved.features, features_);
  // The same rules as create(), update_target() and update_stats_interval().
  if (saved.num_pages % kBalloonPagesPerMib != 0 ||
      saved.num_pages / kBalloonPagesPerMib > guest_mem_mib_)
    return err("balloon: a target of {} pages for a guest of {} MiB", saved.num_pages,
               guest_mem_mib_);
  if ((saved.stats_interval_s != 0) != stats_enabled())
    return err("balloon: statistics every {} s, but they are {} on this device",
               saved.stats_interval_s, stats_enabled() ? "enabled" : "disabled");
  if (saved.stats_head && (!stats_enabled() || *saved.stats_head >= kQueueSize))
    return err("balloon: saved statistics buffer {} is not in a statistics queue",
               *saved.stats_head);
  restored_stats_head_ = saved.stats_head;
  std::lock_guard lock(mu_);
  num_pages_ = saved.num_pages;
  actual_pages_ = saved.actual_pages;
  stats_interval_s_ = saved.stats_interval_s;
  stats_ = saved.stats;
  stats_.target_pages = stats_.actual_pages = stats_.target_mib = stats_.actual_mib = 0;
  return {};
}

void Balloon::process_queue(uint16_t index) {
  if (!ctx_ || watch_.broken) return;
  // Checked first: without statistics the reporting queue is queue 2.
  if (reporting_queue_ && index == *reporting_queue_) return process_reporting();
  switch (index) {
    case kInflateQueue:
      process_inflate();
      break;
    case kDeflateQueue:
      process_deflate();
      break;
    case kStatsQueue:
      if (ctx_->queues[kStatsQueue].config().ready && stats_running()) process_stats();
      break;
    default:
      break;
  }
}

bool Balloon::stats_running() const {
  std::lock_guard lock(mu_);
  return stats_running_;
}

void Balloon::process_inflate() {
  serve_requests(*ctx_, kInflateQueue, kName,
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   bump(counters_.inflate_requests);
                   auto pfns = read_balloon_pfns(ctx_->memory, chain);
                   if (!pfns.ok()) {
                     note_guest_error(counters_.malformed_requests, 1, "inflate", pfns.error());
                     return std::optional<uint32_t>(0);
                   }
                   std::vector<uint32_t> valid;
                   valid.reserve(pfns->size());
                   for (uint32_t pfn : *pfns)
                     if (ctx_->memory.contains(uint64_t{pfn} << kBalloonPfnShift, kBalloonPageSize))
                       valid.push_back(pfn);
                   if (uint64_t bad = pfns->size() - valid.size())
                     note_guest_error(counters_.bad_pfns, bad, "inflate",
                                      err("{} PFNs outside guest RAM skipped", bad));
                   // Discarded before the request is returned: once the driver sees it
                   // used it may deflate and reuse these pages.
                   for (const PageRange& r : coalesce_pfns(std::move(valid))) {
                     auto done = discard_guest_ram(ctx_->memory, r.first_pfn << kBalloonPfnShift,
                                                   r.count << kBalloonPfnShift);
                     if (done.ok()) {
                       bump(counters_.pages_discarded, r.count);
                     } else {
                       bump(counters_.discard_failures);
                       spdlog::warn("{}: {}", kName, done.error().message);
                     }
                   }
                   return std::optional<uint32_t>(0);
                 });
}

void Balloon::process_deflate() {
  // Deflated pages fault back in when the guest touches them: nothing to do but check.
  serve_requests(*ctx_, kDeflateQueue, kName,
                 [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
                   bump(counters_.deflate_requests);
                   auto pfns = read_balloon_pfns(ctx_->memory, chain);
                   if (!pfns.ok())
                     note_guest_error(counters_.malformed_requests, 1, "deflate", pfns.error());
                   return std::optional<uint32_t>(0);
                 });
}

void Balloon::process_reporting() {
  serve_requests(
      *ctx_, *reporting_queue_, kName,
      [&](const DescriptorChain& chain) -> Result<std::optional<uint32_t>> {
        bump(counters_.free_page_reports);
        FreePageReport report = read_free_page_report(chain);
        if (report.malformed)
          note_guest_error(
              counters_.free_page_report_errors, report.malformed, "free page report",
              err("{} buffers device-readable, empty or not page-aligned", report.malformed));
        // Discarded before the chain is returned: once the driver sees it used, the pages
        // go back to its allocator and may be written at once.
        for (const PageRange& r : report.ranges) {
          auto done = discard_guest_ram(ctx_->memory, r.first_pfn << kBalloonPfnShift,
                                        r.count << kBalloonPfnShift);
          if (done.ok()) {
            bump(counters_.free_pages_reported, r.count);
          } else {
            bump(counters_.discard_failures);
            spdlog::warn("{}: {}", kName, done.error().message);
          }
        }
        // The device writes nothing into the buffers: they only name the pages.
        return std::optional<uint32_t>(0);
      });
}

void Balloon::process_stats() {
  Queue& queue = ctx_->queues[kStatsQueue];
  bool used_any = false;
  while (true) {
    auto popped = queue.pop(ctx_->memory);
    if (!popped.ok()) return fail(popped.error());
    if (!*popped) break;
    const DescriptorChain& chain = **popped;
    if (stats_head_) {
      // A compliant driver has one report in flight; give the older one back.
      if (auto used = queue.add_used(ctx_->memory, *stats_head_, 0); !used.ok())
        return fail(used.error());
      used_any = true;
    }
    // Held even when malformed, so the request/response cycle goes on.
    stats_head_ = chain.head;
    bump(counters_.stats_reports);
    auto entries = read_balloon_stats(ctx_->memory, chain);
    if (!entries.ok()) {
      note_guest_error(counters_.stats_report_errors, 1, "statistics", entries.error());
      continue;
    }
    uint64_t unknown = 0;
    {
      std::lock_guard lock(mu_);
      for (const BalloonStat& stat : *entries)
        if (!apply_balloon_stat(stats_, stat)) ++unknown;
    }
    if (unknown)
      note_guest_error(counters_.stats_report_errors, unknown, "statistics",
                       err("{} entries with unknown tags", unknown));
  }
  if (!used_any) return;
  auto notify = queue.needs_interrupt(ctx_->memory);
  if (!notify.ok()) return fail(notify.error());
  if (*notify) ctx_->interrupt.used_ring();
}

void Balloon::on_stats_timer() {
  uint64_t expirations = 0;
  [[maybe_unused]] ssize_t n = ::read(stats_timer_.get(), &expirations, sizeof(expirations));
  if (!ctx_ || watch_.broken || !stats_head_) return;
  // Returning the buffer is how the device asks the driver for a fresh report.
  Queue& queue = ctx_->queues[kStatsQueue];
  uint16_t head = *stats_head_;
  stats_head_.reset();
  if (auto used = queue.add_used(ctx_->memory, head, 0); !used.ok()) return fail(used.error());
  auto notify = queue.needs_interrupt(ctx_->memory);
  if (!notify.ok()) return fail(notify.error());
  if (*notify) ctx_->interrupt.used_ring();
}

void Balloon::on_wake() {
  wake_.consume();
  if (ctx_ && !watch_.broken) ctx_->interrupt.config_changed();
}

void Balloon::fail(const Error& e) {
  spdlog::warn("{}: statistics queue: {}", kName, e.message);
  ctx_->interrupt.needs_reset();
}

void Balloon::arm_stats_timer_locked(uint64_t first_ns) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(first_ns / kNsPerSec);
  spec.it_value.tv_nsec = static_cast<long>(first_ns % kNsPerSec);
  if (first_ns != 0) spec.it_interval.tv_sec = stats_interval_s_;
  if (::timerfd_settime(stats_timer_.get(), 0, &spec, nullptr) != 0)
    spdlog::warn("{}: timerfd_settime: {}", kName, errno_string());
}

Result<void> Balloon::register_events(EventRegistrar& registrar) {
  if (stats_enabled())
    IGN_TRY(registrar.add(stats_timer_.get(), EPOLLIN, [this](uint32_t) { on_stats_timer(); }));
  return registrar.add(wake_.fd(), EPOLLIN, [this](uint32_t) { on_wake(); });
}

Result<void> Balloon::update_target(uint32_t amount_mib) {
  if (amount_mib > guest_mem_mib_)
    return err("balloon: amount_mib {} is more than the guest's {} MiB", amount_mib,
               guest_mem_mib_);
  if (amount_mib > UINT32_MAX / kBalloonPagesPerMib)
    return err("balloon: amount_mib {} does not fit the device's page count", amount_mib);
  {
    std::lock_guard lock(mu_);
    if (!active_) return err("balloon: the guest driver has not started the device");
    num_pages_ = amount_mib * kBalloonPagesPerMib;
  }
  // Config interrupts must come from under the transport's lock: the event loop sends it.
  wake_.signal();
  return {};
}

Result<void> Balloon::update_stats_interval(uint16_t seconds) {
  std::lock_guard lock(mu_);
  if (seconds == stats_interval_s_) return {};
  if (stats_interval_s_ == 0 || seconds == 0)
    return err("balloon: statistics cannot be enabled or disabled after boot");
  stats_interval_s_ = seconds;
  if (stats_running_) arm_stats_timer_locked(1);  // at once, then every `seconds`
  return {};
}

Result<config::BalloonStats> Balloon::latest_stats() const {
  if (!stats_enabled()) return err("balloon: statistics are not enabled");
  std::lock_guard lock(mu_);
  config::BalloonStats s = stats_;
  s.target_pages = num_pages_;
  s.actual_pages = actual_pages_;
  s.target_mib = num_pages_ / kBalloonPagesPerMib;
  s.actual_mib = actual_pages_ / kBalloonPagesPerMib;
  return s;
}

config::Balloon Balloon::config() const {
  std::lock_guard lock(mu_);
  config::Balloon c;
  c.amount_mib = num_pages_ / kBalloonPagesPerMib;
  c.deflate_on_oom = features_ & kBalloonFeatureDeflateOnOom;
  c.stats_polling_interval_s = stats_interval_s_;
  c.free_page_reporting = reporting_enabled();
  return c;
}

uint32_t Balloon::actual_pages() const {
  std::lock_guard lock(mu_);
  return actual_pages_;
}

BalloonCounters Balloon::counters() const {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  return {get(counters_.inflate_requests),       get(counters_.deflate_requests),
          get(counters_.pages_discarded),        get(counters_.bad_pfns),
          get(counters_.malformed_requests),     get(counters_.discard_failures),
          get(counters_.stats_reports),          get(counters_.stats_report_errors),
          get(counters_.free_page_reports),      get(counters_.free_pages_reported),
          get(counters_.free_page_report_errors)};
}

}  // namespace ignition::devices::virtio
