// /machine-config: vCPUs, memory, SMT, dirty tracking, huge pages.
#include "vmm/config/machine_config.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse get_machine_config(VmmController& c, const RouteRequest&) {
  return json_response(config::to_json(c.machine_config()));
}

ApiResponse put_machine_config(VmmController& c, const RouteRequest& r) {
  auto mc = parse_body(r, config::parse_machine_config);
  if (!mc.ok()) return error_response(mc.error());
  ApiResponse response = reply(c.put_machine_config(*mc));
  response.deprecated = body_has_field(r, "cpu_template");
  return response;
}

// An object whose every field is absent or null changes nothing: Firecracker answers it
// as if there were no body at all.
bool is_empty_update(const nlohmann::json& j) {
  if (!j.is_object()) return false;
  for (const auto& [key, value] : j.items()) {
    if (!value.is_null()) return false;
  }
  return true;
}

ApiResponse patch_machine_config(VmmController& c, const RouteRequest& r) {
  auto j = body_json(r);
  if (!j.ok()) return error_response(j.error());
  if (is_empty_update(*j)) return fault("Empty PATCH request.");
  auto update = config::parse_machine_config_update(*j);
  if (!update.ok()) return error_response(body_error(update.error()));
  ApiResponse response = reply(c.patch_machine_config(*update));
  response.deprecated = update->cpu_template.has_value();
  return response;
}

}  // namespace

void add_machine_config_routes(RouteTable& t) {
  t.add(Method::kGet, "/machine-config", get_machine_config);
  t.add(Method::kPut, "/machine-config", put_machine_config);
  t.add(Method::kPatch, "/machine-config", patch_machine_config);
}

}  // namespace ignition::api
