// virtio-pmem (virtio spec 5.19): a host file mapped straight into guest physical memory,
// with one queue on which the driver asks for its writes to be made durable (FLUSH).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/fd.hpp"
#include "devices/rate_limiter.hpp"
#include "devices/virtio/device.hpp"
#include "vmm/config/pmem.hpp"

namespace ignition::devices::virtio::pmem {

// Request types and answers (struct virtio_pmem_req / virtio_pmem_resp).
inline constexpr uint32_t kReqTypeFlush = 0;
inline constexpr uint32_t kRespOk = 0;
inline constexpr uint32_t kRespError = 1;  // Linux turns any nonzero answer into -EIO
inline constexpr uint32_t kReqSize = 4;
inline constexpr uint32_t kRespSize = 4;

// Config space (struct virtio_pmem_config).
inline constexpr uint64_t kConfigStart = 0;
inline constexpr uint64_t kConfigSize = 8;
inline constexpr uint64_t kConfigBytes = 16;

// The backing file mapped MAP_SHARED, followed up to the next `alignment` boundary by
// private anonymous memory: the guest region must be a whole number of 2 MiB pages, the
// file need not be. Owns the fd (FLUSH syncs it) and the mapping.
class Mapping {
 public:
  static Result<Mapping> open(const std::string& path, bool read_only, uint64_t alignment);
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping();

  uint8_t* host() const { return host_; }
  uint64_t size() const { return size_; }            // the whole mapping, aligned
  uint64_t file_size() const { return file_size_; }  // the file's part of it
  // fdatasync: stores through the shared mapping reach stable storage.
  Result<void> sync() const;

 private:
  Mapping(UniqueFd fd, uint8_t* host, uint64_t size, uint64_t file_size)
      : fd_(std::move(fd)), host_(host), size_(size), file_size_(file_size) {}
  void unmap();

  UniqueFd fd_;
  uint8_t* host_ = nullptr;
  uint64_t size_ = 0;
  uint64_t file_size_ = 0;
};

}  // namespace ignition::devices::virtio::pmem

namespace ignition::devices::virtio {

// What the device did, for metrics.
struct PmemCounters {
  uint64_t flushes = 0;           // FLUSH requests answered 0
  uint64_t flush_errors = 0;      // the host failed to sync the file
  uint64_t invalid_requests = 0;  // malformed or unknown requests answered 1
  uint64_t throttled = 0;         // the rate limiter held the queue back
};

class Pmem final : public Device {
 public:
  static constexpr uint64_t kAlignment = 2ull << 20;
  static constexpr uint16_t kQueueSize = 256;

  // Opens config.path_on_host (O_RDWR, or O_RDONLY with read_only) and maps it shared,
  // rounded up to kAlignment (see pmem::Mapping). `gpa` is where the guest sees it and must
  // be kAlignment-aligned. `clock` drives the rate limiter (tests).
  static Result<std::unique_ptr<Pmem>> create(const config::Pmem& config, uint64_t gpa,
                                              Clock clock = {});
  // The same over a mapping already opened (the machine sizes every region before placing
  // them, from the mappings themselves).
  static Result<std::unique_ptr<Pmem>> create(const config::Pmem& config, uint64_t gpa,
                                              pmem::Mapping mapping, Clock clock = {});
  ~Pmem() override = default;

  const std::string& id() const { return id_; }
  const std::string& path() const { return path_; }
  uint64_t gpa() const { return gpa_; }
  uint64_t size() const { return mapping_.size(); }
  uint64_t file_size() const { return mapping_.file_size(); }
  // The mapping, for the KVM memslot (read-only devices: map it KVM_MEM_READONLY).
  uint8_t* host() const { return mapping_.host(); }
  bool read_only() const { return read_only_; }
  bool root_device() const { return root_device_; }
  const RateLimiter& rate_limiter() const { return limiter_; }
  PmemCounters counters() const;

  // PATCH /pmem/{id}; call serialised with the transport like every device callback.
  void update_rate_limiter(const config::RateLimiter& limits);

  DeviceType type() const override { return DeviceType::Pmem; }
  uint64_t features() const override { return 0; }
  std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override;
  void write_config(uint64_t, std::span<const uint8_t>) override {}  // all fields read-only
  Result<void> activate(const ActiveContext& ctx) override;
  void reset() override { ctx_.reset(); }
  void process_queue(uint16_t index) override;
  // Watches the rate limiter's timer, to resume a throttled queue.
  Result<void> register_events(EventRegistrar& registrar) override;
  std::vector<uint8_t> save_state() const override;
  // The device must be the saved one: same id, guest address, mapped size and read-only
  // mode (the guest sized its region when it probed). The saved rate limits replace the
  // configured ones (their buckets start full).
  Result<void> restore_state(std::span<const uint8_t> state) override;

  // The rate limiter's timer fired: resume the queue.
  void on_rate_limiter_timer();

 private:
  Pmem(const config::Pmem& config, uint64_t gpa, pmem::Mapping mapping, RateLimiter limiter);
  // The answer to one request, or an error for a chain that cannot even hold one;
  // nullopt while the rate limiter holds it back.
  Result<std::optional<uint32_t>> serve(const DescriptorChain& chain);
  uint32_t flush();

  std::string id_;
  std::string path_;
  uint64_t gpa_;
  bool read_only_;
  bool root_device_;
  pmem::Mapping mapping_;
  RateLimiter limiter_;
  std::optional<ActiveContext> ctx_;

  struct LiveCounters {
    std::atomic<uint64_t> flushes{0}, flush_errors{0}, invalid_requests{0}, throttled{0};
  } counters_;
};

}  // namespace ignition::devices::virtio
