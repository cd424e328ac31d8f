// Metrics as Firecracker writes them: one JSON object per line in the metrics file, flushed on
// FlushMetrics and periodically, with Firecracker's group and key names. Counters (its
// IncMetric) report what changed since the previous line; stored values (its StoreMetric:
// startup time, latencies) report what they hold. The API keeps its own counters here; the
// machine's (devices, vCPUs) are collected at each flush.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "api/api_types.hpp"
#include "base/fd.hpp"
#include "base/result.hpp"
#include "vmm/machine.hpp"

namespace ignition::api {

// The API's counters and stored values. Thread-safe.
class ApiMetrics {
 public:
  ApiMetrics();

  // One answered request: counted under its method's group and route family
  // ("put_api_requests": "drive_count"), and as a failure ("drive_fails") when it got a
  // fault; a request that used a deprecated field also counts in "deprecated_api".
  void count_request(Method method, std::string_view path, int status, bool deprecated);
  // latencies_us.<name>, e.g. "full_create_snapshot" or "vmm_load_snapshot".
  void store_latency(std::string_view name, std::chrono::microseconds took);
  // api_server.process_startup_time_us / _cpu_us.
  void set_startup_time(std::chrono::microseconds wall, std::chrono::microseconds cpu);

  // Cumulative counters: {"get_api_requests": {...}, "put_api_requests": ..., ...}.
  nlohmann::json counters() const;
  // {"api_server": {...}, "latencies_us": {...}}.
  nlohmann::json stores() const;

 private:
  mutable std::mutex mu_;
  nlohmann::json counters_;
  nlohmann::json stores_;
};

// The machine's counters in Firecracker's groups: "block_<drive_id>" per drive and "block"
// summed over them, "net_<iface_id>" and "net" likewise, "balloon", "i8042", "vcpu".
nlohmann::json machine_metrics(const vmm::Machine::Counters& counters);

// The configured metrics file or FIFO and what it was last told.
class MetricsFile {
 public:
  explicit MetricsFile(UniqueFd fd) : fd_(std::move(fd)) {}

  // Writes `line` (top-level fields such as utc_timestamp_ms, id, properties) with
  // `counters` as the change since the previous line and `stores` as they are. Counters
  // absent this time (a machine that did not answer) keep their last reported values.
  Result<void> write_line(nlohmann::json line, const nlohmann::json& counters,
                          const nlohmann::json& stores);

 private:
  UniqueFd fd_;
  nlohmann::json reported_ = nlohmann::json::object();
};

// Calls `tick` every `period` on its own thread until destroyed (Firecracker's periodic
// metrics write, every 60 s).
class PeriodicTask {
 public:
  PeriodicTask(std::chrono::milliseconds period, std::function<void()> tick);
  ~PeriodicTask();
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ignition::api
