// virtio-balloon: the VMM sets a target size, the guest driver gives pages back to the host
// (inflate) or takes them back (deflate) to reach it, and optionally reports its memory
// statistics every few seconds, and with free page reporting gives the host the free pages
// the guest lists. Firecracker's balloon, without free page hinting.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "base/event_fd.hpp"
#include "base/fd.hpp"
#include "devices/virtio/device.hpp"
#include "vmm/config/balloon.hpp"

namespace ignition::devices::virtio {

// Feature bits (virtio spec 5.5.3).
inline constexpr uint64_t kBalloonFeatureStatsVq = 1ULL << 1;
inline constexpr uint64_t kBalloonFeatureDeflateOnOom = 1ULL << 2;
inline constexpr uint64_t kBalloonFeatureReporting = 1ULL << 5;  // VIRTIO_BALLOON_F_REPORTING

// What the device has done, for metrics and tests.
struct BalloonCounters {
  uint64_t inflate_requests = 0;
  uint64_t deflate_requests = 0;
  uint64_t pages_discarded = 0;     // 4 KiB pages returned to the host
  uint64_t bad_pfns = 0;            // PFNs outside guest RAM, skipped
  uint64_t malformed_requests = 0;  // inflate/deflate requests skipped whole
  uint64_t discard_failures = 0;
  uint64_t stats_reports = 0;            // statistics reports received
  uint64_t stats_report_errors = 0;      // malformed reports and unknown tags
  uint64_t free_page_reports = 0;        // free page reporting chains returned to the driver
  uint64_t free_pages_reported = 0;      // 4 KiB pages returned to the host that way
  uint64_t free_page_report_errors = 0;  // reported buffers device-readable, empty, unaligned
  // (discards that fail count in discard_failures, whichever queue asked for them)
};

class Balloon final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  static constexpr uint16_t kInflateQueue = 0;
  static constexpr uint16_t kDeflateQueue = 1;
  static constexpr uint16_t kStatsQueue = 2;  // only when statistics are enabled
  // The reporting queue comes next, at 2 or 3 (after the statistics queue iff the driver
  // accepted statistics: Linux numbers only the queues of negotiated features).
  static constexpr uint64_t kConfigSize = 8;  // le32 num_pages, le32 actual

  // A balloon of `cfg.amount_mib` (at most the guest's `guest_mem_mib`). Statistics are
  // enabled for the device's lifetime iff cfg.stats_polling_interval_s > 0, free page
  // reporting iff cfg.free_page_reporting. Free page hinting is refused.
  static Result<std::unique_ptr<Balloon>> create(const config::Balloon& cfg,
                                                 uint64_t guest_mem_mib);

  // Device: runs under the transport's lock.
  DeviceType type() const override { return DeviceType::Balloon; }
  uint64_t features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override;
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t offset, std::span<const uint8_t> data) override;
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override;
  void process_queue(uint16_t index) override;
  // Watches the statistics timer and the API's wake-up eventfd.
  Result<void> register_events(EventRegistrar& registrar) override;
  std::vector<uint8_t> save_state() const override;
  // The device must be configured as the saved one (deflate-on-OOM, statistics on or
  // off); target, actual size, statistics period and the guest's latest report come
  // from the snapshot, and the statistics buffer the device held is held again.
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // API side (PATCH/GET /balloon...), callable from any thread.
  // A new target; fails before the driver has started the device, or above guest memory.
  // The driver hears of it through a config interrupt sent from the event loop.
  Result<void> update_target(uint32_t amount_mib);
  // A new statistics period. Statistics cannot be turned on or off after boot (0 fails
  // unless they were off already). The driver is asked for fresh statistics at once.
  Result<void> update_stats_interval(uint16_t seconds);
  // Target and actual size and the guest's latest statistics; fails if they are disabled.
  Result<config::BalloonStats> latest_stats() const;
  // The configuration as it stands now (amount_mib is the current target).
  config::Balloon config() const;
  // Pages the driver says the balloon holds (config field `actual`).
  uint32_t actual_pages() const;
  BalloonCounters counters() const;

  // For tests: the fds register_events() watches.
  int stats_timer_fd() const { return stats_timer_.get(); }
  int wake_fd() const { return wake_.fd(); }

 private:
  Balloon(uint64_t features, uint32_t num_pages, uint16_t stats_interval_s, uint64_t guest_mem_mib,
          UniqueFd stats_timer, EventFd wake)
      : features_(features),
        guest_mem_mib_(guest_mem_mib),
        stats_timer_(std::move(stats_timer)),
        wake_(std::move(wake)),
        num_pages_(num_pages),
        stats_interval_s_(stats_interval_s) {}

  bool stats_enabled() const { return stats_timer_.valid(); }
  bool reporting_enabled() const { return features_ & kBalloonFeatureReporting; }
  bool stats_running() const;
  void process_inflate();
  void process_deflate();
  void process_stats();
  void process_reporting();
  void on_stats_timer();
  void on_wake();
  void fail(const Error& e);
  // Arms the timer to fire after `first_ns`, then every stats interval; 0 disarms. mu_ held.
  void arm_stats_timer_locked(uint64_t first_ns);

  const uint64_t features_;
  const uint64_t guest_mem_mib_;
  UniqueFd stats_timer_;  // timerfd, only when statistics are enabled
  EventFd wake_;          // the API asks the event loop to send a config interrupt

  // Passes interrupts on to the transport, noting when the device asked for a reset
  // (also from serve_requests) so it stays quiet until the driver resets it.
  struct ResetWatch final : Interrupt {
    Interrupt* inner = nullptr;
    bool broken = false;
    void used_ring() override { inner->used_ring(); }
    void config_changed() override { inner->config_changed(); }
    void needs_reset() override {
      broken = true;
      inner->needs_reset();
    }
  };

  // Event-thread state (under the transport's lock only).
  std::optional<ActiveContext> ctx_;  // its interrupt is watch_
  ResetWatch watch_;
  std::optional<uint16_t> stats_head_;           // the statistics buffer we hold
  std::optional<uint16_t> restored_stats_head_;  // held again by the next activate()
  std::optional<uint16_t> reporting_queue_;      // its index, when the driver accepted it

  // Shared with API threads.
  mutable std::mutex mu_;
  uint32_t num_pages_;
  uint32_t actual_pages_ = 0;
  uint16_t stats_interval_s_;
  bool active_ = false;
  bool stats_running_ = false;  // active, and the driver accepted the statistics queue
  config::BalloonStats stats_;

  struct AtomicCounters {
    std::atomic<uint64_t> inflate_requests{0}, deflate_requests{0}, pages_discarded{0}, bad_pfns{0},
        malformed_requests{0}, discard_failures{0}, stats_reports{0}, stats_report_errors{0},
        free_page_reports{0}, free_pages_reported{0}, free_page_report_errors{0};
  } counters_;
};

}  // namespace ignition::devices::virtio
