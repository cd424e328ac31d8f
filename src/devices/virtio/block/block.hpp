// virtio-blk: a file-backed disk with one request queue, synchronous I/O, an optional
// rate limiter, and runtime updates of its backing file and limits (PATCH /drives).
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "devices/rate_limiter.hpp"
#include "devices/virtio/block/disk.hpp"
#include "devices/virtio/block/request.hpp"
#include "devices/virtio/device.hpp"
#include "vmm/config/drive.hpp"

namespace ignition::devices::virtio::block {

// Feature bits (virtio spec 5.2.3).
inline constexpr uint64_t kFeatureSegMax = 1ULL << 2;
inline constexpr uint64_t kFeatureRo = 1ULL << 5;
inline constexpr uint64_t kFeatureBlkSize = 1ULL << 6;
inline constexpr uint64_t kFeatureFlush = 1ULL << 9;
inline constexpr uint64_t kFeatureDiscard = 1ULL << 13;
inline constexpr uint64_t kFeatureWriteZeroes = 1ULL << 14;

// Config space offsets (struct virtio_blk_config), for the fields this device fills.
inline constexpr uint64_t kConfigCapacity = 0;
inline constexpr uint64_t kConfigSegMax = 12;
inline constexpr uint64_t kConfigBlkSize = 20;
inline constexpr uint64_t kConfigMaxDiscardSectors = 36;
inline constexpr uint64_t kConfigMaxDiscardSeg = 40;
inline constexpr uint64_t kConfigDiscardSectorAlignment = 44;
inline constexpr uint64_t kConfigMaxWriteZeroesSectors = 48;
inline constexpr uint64_t kConfigMaxWriteZeroesSeg = 52;
inline constexpr uint64_t kConfigWriteZeroesMayUnmap = 56;
inline constexpr uint64_t kConfigSize = 60;

}  // namespace ignition::devices::virtio::block

namespace ignition::devices::virtio {

// What the device did, for metrics. A snapshot; the live counters are atomics so a
// metrics thread may read them while the device runs.
struct BlockCounters {
  uint64_t reads = 0;
  uint64_t writes = 0;
  uint64_t read_bytes = 0;
  uint64_t write_bytes = 0;
  uint64_t flushes = 0;
  uint64_t discards = 0;
  uint64_t write_zeroes = 0;
  uint64_t get_ids = 0;
  uint64_t io_errors = 0;         // the host file failed a request (IOERR)
  uint64_t invalid_requests = 0;  // the guest's request was rejected (IOERR / UNSUPP)
  uint64_t throttled = 0;         // the rate limiter held the queue back
};

class Block final : public Device {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Segments per request: the ring minus the header and status descriptors.
  static constexpr uint32_t kSegMax = kQueueSize - 2;
  static constexpr uint32_t kMaxRangeSegments = 32;
  static constexpr uint32_t kMaxRangeSectors = UINT32_MAX;
  static constexpr uint32_t kDiscardAlignmentSectors = 8;  // 4 KiB, the usual fs block

  // Opens the drive's file. Fails for vhost-user drives, io_engine Async, a missing
  // path_on_host, or a file that cannot be opened. `clock` is for the rate limiter (tests).
  static Result<std::unique_ptr<Block>> create(const config::Drive& drive, Clock clock = {});

  DeviceType type() const override { return DeviceType::Block; }
  uint64_t features() const override { return features_; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}  // all fields read-only
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override { ctx_.reset(); }
  void process_queue(uint16_t index) override;
  // Watches the rate limiter's timer, to resume a throttled queue.
  Result<void> register_events(EventRegistrar& registrar) override;
  std::vector<uint8_t> save_state() const override;
  // The drive must be the saved one: same id and read-only mode, a backing file that still
  // exists with the saved capacity and can offer the saved features. The saved rate
  // limits replace the configured ones (their buckets start full).
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // PATCH /drives/{id}. Like every device callback, call these serialised with the
  // transport (under its lock, or on the event thread that holds it).
  // Switches to a new backing file (same read-only mode) and tells the driver the
  // capacity may have changed. On error the old file stays.
  Result<void> update_path(const std::string& path);
  void update_rate_limiter(const config::RateLimiter& limits);

  // The rate limiter's timer fired: resume the queue.
  void on_rate_limiter_timer();

  const std::string& drive_id() const { return drive_id_; }
  const std::string& path() const { return disk_.path(); }
  bool read_only() const { return read_only_; }
  uint64_t capacity_sectors() const { return disk_.capacity_sectors(); }
  const RateLimiter& rate_limiter() const { return limiter_; }
  BlockCounters counters() const;

 private:
  Block(const config::Drive& drive, block::DiskFile disk, RateLimiter limiter);
  void build_config();
  block::DiskGeometry geometry() const;
  // Holds the request back (false) when the rate limiter says so.
  bool admit(const block::Request& req);
  // Runs an accepted request; returns its status and the bytes written into its buffers.
  uint8_t execute(const block::Request& req, uint32_t& written);
  Result<void> transfer(const block::Request& req);
  Result<void> write_id(const block::Request& req);

  std::string drive_id_;
  bool read_only_;
  bool writeback_;
  bool may_unmap_ = false;  // WRITE_ZEROES may punch holes (fixed at creation)
  block::DiskFile disk_;
  RateLimiter limiter_;
  uint64_t features_ = 0;
  std::array<uint8_t, block::kConfigSize> config_{};
  std::optional<ActiveContext> ctx_;

  struct LiveCounters {
    std::atomic<uint64_t> reads{0}, writes{0}, read_bytes{0}, write_bytes{0}, flushes{0},
        discards{0}, write_zeroes{0}, get_ids{0}, io_errors{0}, invalid_requests{0}, throttled{0};
  } counters_;
};

}  // namespace ignition::devices::virtio
