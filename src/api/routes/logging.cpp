// /logger and /metrics: where the VMM writes its logs and its metrics lines.
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"
#include "vmm/config/logger.hpp"
#include "vmm/config/metrics.hpp"

namespace ignition::api {

namespace {

ApiResponse put_logger(VmmController& c, const RouteRequest& r) {
  auto logger = parse_body(r, config::parse_logger);
  if (!logger.ok()) return error_response(logger.error());
  return reply(c.put_logger(*logger));
}

ApiResponse put_metrics(VmmController& c, const RouteRequest& r) {
  auto metrics = parse_body(r, config::parse_metrics);
  if (!metrics.ok()) return error_response(metrics.error());
  return reply(c.put_metrics(*metrics));
}

}  // namespace

void add_logger_routes(RouteTable& t) {
  t.add(Method::kPut, "/logger", put_logger);
}
void add_metrics_routes(RouteTable& t) {
  t.add(Method::kPut, "/metrics", put_metrics);
}

}  // namespace ignition::api
