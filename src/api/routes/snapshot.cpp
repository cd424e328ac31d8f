// /snapshot/create and /snapshot/load.
#include "vmm/config/snapshot.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_snapshot_create(VmmController& c, const RouteRequest& r) {
  auto params = parse_body(r, config::parse_snapshot_create_params);
  if (!params.ok()) return error_response(params.error());
  return reply(c.create_snapshot(*params));
}

ApiResponse put_snapshot_load(VmmController& c, const RouteRequest& r) {
  auto params = parse_body(r, config::parse_snapshot_load_params);
  if (!params.ok()) return error_response(params.error());
  ApiResponse response = reply(c.load_snapshot(*params));
  response.deprecated = params->used_deprecated_fields;
  return response;
}

ApiResponse put_snapshot(VmmController&, const RouteRequest&) {
  return fault("Missing snapshot operation type.");
}

}  // namespace

void add_snapshot_routes(RouteTable& t) {
  t.add(Method::kPut, "/snapshot/create", put_snapshot_create);
  t.add(Method::kPut, "/snapshot/load", put_snapshot_load);
  t.add(Method::kPut, "/snapshot", put_snapshot);
}

}  // namespace ignition::api
