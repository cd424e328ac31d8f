// /mmds and /mmds/config: the metadata document and which interfaces may reach it.
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"
#include "vmm/config/mmds_config.hpp"

namespace ignition::api {

namespace {

ApiResponse get_mmds(VmmController& c, const RouteRequest&) {
  return json_response(c.mmds());
}

ApiResponse put_mmds(VmmController& c, const RouteRequest& r) {
  auto data = body_json(r);
  if (!data.ok()) return error_response(data.error());
  return reply(c.put_mmds(std::move(*data)));
}

ApiResponse patch_mmds(VmmController& c, const RouteRequest& r) {
  auto patch = body_json(r);
  if (!patch.ok()) return error_response(patch.error());
  return reply(c.patch_mmds(*patch));
}

ApiResponse put_mmds_config(VmmController& c, const RouteRequest& r) {
  auto mmds = parse_body(r, config::parse_mmds_config);
  if (!mmds.ok()) return error_response(mmds.error());
  ApiResponse response = reply(c.put_mmds_config(*mmds));
  // Firecracker deprecates MMDS V1, also when it is chosen by default.
  response.deprecated = mmds->version == config::MmdsVersion::kV1;
  return response;
}

}  // namespace

void add_mmds_routes(RouteTable& t) {
  t.add(Method::kGet, "/mmds", get_mmds);
  t.add(Method::kPut, "/mmds", put_mmds);
  t.add(Method::kPatch, "/mmds", patch_mmds);
  t.add(Method::kPut, "/mmds/config", put_mmds_config);
}

}  // namespace ignition::api
