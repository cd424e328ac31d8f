// /balloon: the virtio-balloon device, its statistics and free page hinting runs.
#include "vmm/config/balloon.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse get_balloon(VmmController& c, const RouteRequest&) {
  return reply_json(c.balloon());
}

ApiResponse put_balloon(VmmController& c, const RouteRequest& r) {
  auto balloon = parse_body(r, config::parse_balloon);
  if (!balloon.ok()) return error_response(balloon.error());
  return reply(c.put_balloon(*balloon));
}

ApiResponse patch_balloon(VmmController& c, const RouteRequest& r) {
  auto update = parse_body(r, config::parse_balloon_update);
  if (!update.ok()) return error_response(update.error());
  return reply(c.patch_balloon(*update));
}

ApiResponse get_statistics(VmmController& c, const RouteRequest&) {
  return reply_json(c.balloon_statistics());
}

ApiResponse patch_statistics(VmmController& c, const RouteRequest& r) {
  auto update = parse_body(r, config::parse_balloon_stats_update);
  if (!update.ok()) return error_response(update.error());
  return reply(c.patch_balloon_statistics(*update));
}

Result<BalloonHintingStart> parse_hinting_start(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto fields, config::FieldReader::open(j, {"acknowledge_on_stop"}));
  BalloonHintingStart cmd;
  IGN_ASSIGN_OR_RETURN(cmd.acknowledge_on_stop, fields.bool_or("acknowledge_on_stop", false));
  return cmd;
}

// The body is optional: none means the defaults.
ApiResponse patch_hinting_start(VmmController& c, const RouteRequest& r) {
  BalloonHintingStart cmd;
  if (!r.body().empty()) {
    auto parsed = parse_body(r, parse_hinting_start);
    if (!parsed.ok()) return error_response(parsed.error());
    cmd = *parsed;
  }
  return reply(c.start_balloon_hinting(cmd));
}

ApiResponse get_hinting_status(VmmController& c, const RouteRequest&) {
  auto status = c.balloon_hinting_status();
  if (!status.ok()) return error_response(status.error());
  return json_response(*status);
}

ApiResponse patch_hinting_stop(VmmController& c, const RouteRequest&) {
  return reply(c.stop_balloon_hinting());
}

}  // namespace

void add_balloon_routes(RouteTable& t) {
  t.add(Method::kGet, "/balloon", get_balloon);
  t.add(Method::kPut, "/balloon", put_balloon);
  t.add(Method::kPatch, "/balloon", patch_balloon);
  t.add(Method::kGet, "/balloon/statistics", get_statistics);
  t.add(Method::kPatch, "/balloon/statistics", patch_statistics);
  t.add(Method::kPatch, "/balloon/hinting/start", patch_hinting_start, /*body_optional=*/true);
  t.add(Method::kGet, "/balloon/hinting/status", get_hinting_status);
  t.add(Method::kPatch, "/balloon/hinting/stop", patch_hinting_stop, /*body_optional=*/true);
}

}  // namespace ignition::api
