// The metrics line: Firecracker's key names for what the API and the machine count.
#include "api/metrics.hpp"

#include <unistd.h>

#include <array>
#include <utility>

namespace ignition::api {

namespace {

using nlohmann::json;

struct Family {
  std::string_view segment;  // the path's first segment ("" for "/")
  std::string_view key;      // Firecracker's prefix: "<key>_count", "<key>_fails"
};

// The route families Firecracker counts, per method (its Get/Put/PatchRequestsMetrics).
constexpr std::array kGetFamilies = {
    Family{"", "instance_info"}, Family{"machine-config", "machine_cfg"}, Family{"mmds", "mmds"},
    Family{"version", "vmm_version"}, Family{"hotplug", "hotplug_memory"}};
constexpr std::array kPutFamilies = {Family{"actions", "actions"},
                                     Family{"boot-source", "boot_source"},
                                     Family{"drives", "drive"},
                                     Family{"logger", "logger"},
                                     Family{"machine-config", "machine_cfg"},
                                     Family{"cpu-config", "cpu_cfg"},
                                     Family{"metrics", "metrics"},
                                     Family{"network-interfaces", "network"},
                                     Family{"mmds", "mmds"},
                                     Family{"vsock", "vsock"},
                                     Family{"pmem", "pmem"},
                                     Family{"serial", "serial"},
                                     Family{"hotplug", "hotplug_memory"}};
constexpr std::array kPatchFamilies = {Family{"drives", "drive"},
                                       Family{"network-interfaces", "network"},
                                       Family{"machine-config", "machine_cfg"},
                                       Family{"mmds", "mmds"},
                                       Family{"hotplug", "hotplug_memory"},
                                       Family{"pmem", "pmem"}};

constexpr std::array kLatencies = {"full_create_snapshot",
                                   "diff_create_snapshot",
                                   "load_snapshot",
                                   "pause_vm",
                                   "resume_vm",
                                   "vmm_full_create_snapshot",
                                   "vmm_diff_create_snapshot",
                                   "vmm_load_snapshot",
                                   "vmm_pause_vm",
                                   "vmm_resume_vm"};

template <size_t N>
json zeroed(const std::array<Family, N>& families, bool with_fails) {
  json group = json::object();
  for (const auto& f : families) {
    group[std::string(f.key) + "_count"] = uint64_t{0};
    if (with_fails) group[std::string(f.key) + "_fails"] = uint64_t{0};
  }
  return group;
}

template <size_t N>
const Family* find_family(const std::array<Family, N>& families, std::string_view segment) {
  for (const auto& f : families)
    if (f.segment == segment) return &f;
  return nullptr;
}

std::string_view first_segment(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path.substr(0, path.find('/'));
}

void add(json& group, const std::string& key, uint64_t n) {
  group[key] = group.value(key, uint64_t{0}) + n;
}

// Counters now minus counters reported; a counter that went back (it cannot) reports as is.
json change(const json& now, const json& before) {
  if (now.is_object()) {
    json out = json::object();
    for (const auto& [key, value] : now.items()) {
      out[key] = change(value, before.is_object() && before.contains(key) ? before[key] : json());
    }
    return out;
  }
  if (now.is_number_unsigned() && before.is_number_unsigned()) {
    auto a = now.get<uint64_t>(), b = before.get<uint64_t>();
    return a >= b ? a - b : a;
  }
  return now;
}

json drive_json(const vmm::Machine::DriveCounters& d) {
  return {{"read_count", d.reads},
          {"write_count", d.writes},
          {"read_bytes", d.read_bytes},
          {"write_bytes", d.write_bytes},
          {"flush_count", d.flushes},
          {"execute_fails", d.io_errors},
          {"invalid_reqs_count", d.invalid_requests},
          {"rate_limiter_throttled_events", d.throttled},
          {"update_count", d.updates},
          {"update_fails", d.update_fails}};
}

json nic_json(const vmm::Machine::NicCounters& n) {
  return {{"rx_packets_count", n.rx_frames},
          {"rx_bytes_count", n.rx_bytes},
          {"rx_fails", n.rx_dropped},
          {"no_rx_avail_buffer", n.rx_no_buffers},
          {"tap_read_fails", n.rx_tap_errors},
          {"rx_rate_limiter_throttled", n.rx_rate_limited},
          {"tx_packets_count", n.tx_frames},
          {"tx_bytes_count", n.tx_bytes},
          {"tx_malformed_frames", n.tx_malformed},
          {"tap_write_fails", n.tx_tap_errors},
          {"tx_spoofed_mac_count", n.tx_spoofed_mac},
          {"tx_rate_limiter_throttled", n.tx_rate_limited},
          {"update_count", n.updates},
          {"update_fails", n.update_fails}};
}

// Firecracker's aggregate group: every device's counters summed.
void sum_into(json& total, const json& device) {
  for (const auto& [key, value] : device.items()) add(total, key, value.get<uint64_t>());
}

}  // namespace

ApiMetrics::ApiMetrics() {
  counters_ = {{"get_api_requests", zeroed(kGetFamilies, false)},
               {"put_api_requests", zeroed(kPutFamilies, true)},
               {"patch_api_requests", zeroed(kPatchFamilies, true)},
               {"deprecated_api", {{"deprecated_http_api_calls", uint64_t{0}}}}};
  json latencies = json::object();
  for (const char* name : kLatencies) latencies[name] = uint64_t{0};
  stores_ = {
      {"api_server",
       {{"process_startup_time_us", uint64_t{0}}, {"process_startup_time_cpu_us", uint64_t{0}}}},
      {"latencies_us", latencies}};
}

void ApiMetrics::count_request(Method method, std::string_view path, int status, bool deprecated) {
  std::string_view segment = first_segment(path);
  const Family* family = nullptr;
  const char* group = nullptr;
  switch (method) {
    case Method::kGet:
      family = find_family(kGetFamilies, segment);
      group = "get_api_requests";
      break;
    case Method::kPut:
      family = find_family(kPutFamilies, segment);
      group = "put_api_requests";
      break;
    case Method::kPatch:
      family = find_family(kPatchFamilies, segment);
      group = "patch_api_requests";
      break;
    case Method::kOther:
      break;
  }
  std::lock_guard lock(mu_);
  if (deprecated) add(counters_["deprecated_api"], "deprecated_http_api_calls", 1);
  if (family == nullptr) return;
  json& g = counters_[group];
  add(g, std::string(family->key) + "_count", 1);
  // Firecracker has no failure counters for GETs.
  if (status >= 400 && method != Method::kGet) add(g, std::string(family->key) + "_fails", 1);
}

void ApiMetrics::store_latency(std::string_view name, std::chrono::microseconds took) {
  std::lock_guard lock(mu_);
  stores_["latencies_us"][std::string(name)] = static_cast<uint64_t>(took.count());
}

void ApiMetrics::set_startup_time(std::chrono::microseconds wall, std::chrono::microseconds cpu) {
  std::lock_guard lock(mu_);
  stores_["api_server"]["process_startup_time_us"] = static_cast<uint64_t>(wall.count());
  stores_["api_server"]["process_startup_time_cpu_us"] = static_cast<uint64_t>(cpu.count());
}

json ApiMetrics::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

json ApiMetrics::stores() const {
  std::lock_guard lock(mu_);
  return stores_;
}

json machine_metrics(const vmm::Machine::Counters& c) {
  json out = json::object();
  json block_total = json::object(), net_total = json::object();
  for (const auto& d : c.drives) {
    json one = drive_json(d);
    sum_into(block_total, one);
    out["block_" + d.drive_id] = std::move(one);
  }
  for (const auto& n : c.nics) {
    json one = nic_json(n);
    sum_into(net_total, one);
    out["net_" + n.iface_id] = std::move(one);
  }
  // The aggregates are there even without devices, with zeros, as in Firecracker.
  out["block"] = c.drives.empty() ? drive_json({}) : block_total;
  out["net"] = c.nics.empty() ? nic_json({}) : net_total;
  devices::virtio::BalloonCounters b = c.balloon.value_or(devices::virtio::BalloonCounters{});
  out["balloon"] = {{"inflate_count", b.inflate_requests},
                    {"deflate_count", b.deflate_requests},
                    {"stats_updates_count", b.stats_reports},
                    {"stats_update_fails", b.stats_report_errors},
                    {"free_page_report_count", b.free_page_reports},
                    {"free_page_report_freed", b.free_pages_reported * 4096},
                    {"free_page_report_fails", b.free_page_report_errors}};
  out["i8042"] = {{"read_count", c.i8042.reads},
                  {"write_count", c.i8042.writes},
                  {"missed_read_count", c.i8042.missed_reads},
                  {"missed_write_count", c.i8042.missed_writes},
                  {"reset_count", c.i8042.resets}};
  out["vcpu"] = {{"exit_count", c.vcpu_exits}, {"failures", c.vcpu_failures}};
  return out;
}

Result<void> MetricsFile::write_line(json line, const json& counters, const json& stores) {
  line.update(change(counters, reported_));
  line.update(stores, /*merge_objects=*/true);
  std::string text = dump_json(line) + "\n";
  // One write(2) per line, so a reader of a FIFO never sees half a line.
  ssize_t n = ::write(fd_.get(), text.data(), text.size());
  if (n < 0) return err("writing metrics: {}", errno_string());
  if (static_cast<size_t>(n) != text.size()) return err("writing metrics: short write");
  reported_.update(counters, /*merge_objects=*/true);
  return {};
}

PeriodicTask::PeriodicTask(std::chrono::milliseconds period, std::function<void()> tick) {
  thread_ = std::thread([this, period, tick = std::move(tick)] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, period, [this] { return stopping_; })) {
      lock.unlock();
      tick();
      lock.lock();
    }
  });
}

PeriodicTask::~PeriodicTask() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

}  // namespace ignition::api
