// Balloon parsing and serialization.
#include "vmm/config/balloon.hpp"

#include "vmm/config/json_fields.hpp"

namespace ignition::config {

Result<Balloon> parse_balloon(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(
      auto r, FieldReader::open(j, {"amount_mib", "deflate_on_oom", "stats_polling_interval_s",
                                    "free_page_hinting", "free_page_reporting"}));
  Balloon b;
  IGN_ASSIGN_OR_RETURN(b.amount_mib, r.required_uint<uint32_t>("amount_mib"));
  IGN_ASSIGN_OR_RETURN(b.deflate_on_oom, r.required_bool("deflate_on_oom"));
  IGN_ASSIGN_OR_RETURN(b.stats_polling_interval_s,
                       r.uint_or<uint16_t>("stats_polling_interval_s", 0));
  IGN_ASSIGN_OR_RETURN(b.free_page_hinting, r.bool_or("free_page_hinting", false));
  IGN_ASSIGN_OR_RETURN(b.free_page_reporting, r.bool_or("free_page_reporting", false));
  return b;
}

Result<BalloonUpdate> parse_balloon_update(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"amount_mib"}));
  BalloonUpdate u;
  IGN_ASSIGN_OR_RETURN(u.amount_mib, r.required_uint<uint32_t>("amount_mib"));
  return u;
}

Result<BalloonStatsUpdate> parse_balloon_stats_update(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"stats_polling_interval_s"}));
  BalloonStatsUpdate u;
  IGN_ASSIGN_OR_RETURN(u.stats_polling_interval_s,
                       r.required_uint<uint16_t>("stats_polling_interval_s"));
  return u;
}

nlohmann::json to_json(const Balloon& b) {
  return {{"amount_mib", b.amount_mib},
          {"deflate_on_oom", b.deflate_on_oom},
          {"stats_polling_interval_s", b.stats_polling_interval_s},
          {"free_page_hinting", b.free_page_hinting},
          {"free_page_reporting", b.free_page_reporting}};
}

nlohmann::json to_json(const BalloonStats& s) {
  nlohmann::json j = {{"target_pages", s.target_pages},
                      {"actual_pages", s.actual_pages},
                      {"target_mib", s.target_mib},
                      {"actual_mib", s.actual_mib}};
  // Like Firecracker, leave out what the guest has not reported.
  auto put = [&j](const char* name, const std::optional<uint64_t>& v) {
    if (v) j[name] = *v;
  };
  put("swap_in", s.swap_in);
  put("swap_out", s.swap_out);
  put("major_faults", s.major_faults);
  put("minor_faults", s.minor_faults);
  put("free_memory", s.free_memory);
  put("total_memory", s.total_memory);
  put("available_memory", s.available_memory);
  put("disk_caches", s.disk_caches);
  put("hugetlb_allocations", s.hugetlb_allocations);
  put("hugetlb_failures", s.hugetlb_failures);
  put("oom_kill", s.oom_kill);
  put("alloc_stall", s.alloc_stall);
  put("async_scan", s.async_scan);
  put("direct_scan", s.direct_scan);
  put("async_reclaim", s.async_reclaim);
  put("direct_reclaim", s.direct_reclaim);
  return j;
}

}  // namespace ignition::config
