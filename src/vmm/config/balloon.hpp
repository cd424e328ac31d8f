// balloon: the virtio-balloon device and its PATCH bodies and statistics, as in
// Firecracker's Balloon / BalloonUpdate / BalloonStatsUpdate / BalloonStats API objects.
#pragma once

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

struct Balloon {
  uint32_t amount_mib = 0;  // target size; must not exceed the guest's memory
  bool deflate_on_oom = false;
  uint16_t stats_polling_interval_s = 0;  // 0 disables statistics
  bool free_page_hinting = false;
  bool free_page_reporting = false;

  bool operator==(const Balloon&) const = default;
};

// PATCH /balloon: a new target size.
struct BalloonUpdate {
  uint32_t amount_mib = 0;
  bool operator==(const BalloonUpdate&) const = default;
};

// PATCH /balloon/statistics: a new polling interval (stats cannot be turned on/off after boot).
struct BalloonStatsUpdate {
  uint16_t stats_polling_interval_s = 0;
  bool operator==(const BalloonStatsUpdate&) const = default;
};

// GET /balloon/statistics. Guest-reported values are absent until the guest reports them.
struct BalloonStats {
  uint32_t target_pages = 0;
  uint32_t actual_pages = 0;
  uint32_t target_mib = 0;
  uint32_t actual_mib = 0;
  std::optional<uint64_t> swap_in, swap_out, major_faults, minor_faults, free_memory, total_memory,
      available_memory, disk_caches, hugetlb_allocations, hugetlb_failures, oom_kill, alloc_stall,
      async_scan, direct_scan, async_reclaim, direct_reclaim;
};

Result<Balloon> parse_balloon(const nlohmann::json& j);
Result<BalloonUpdate> parse_balloon_update(const nlohmann::json& j);
Result<BalloonStatsUpdate> parse_balloon_stats_update(const nlohmann::json& j);
nlohmann::json to_json(const Balloon& b);
nlohmann::json to_json(const BalloonStats& s);

}  // namespace ignition::config
