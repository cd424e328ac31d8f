// /hotplug/memory: the virtio-mem region, configured before boot and resized after.
#include "vmm/config/memory_hotplug.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_memory_hotplug(VmmController& c, const RouteRequest& r) {
  auto hotplug = parse_body(r, config::parse_memory_hotplug);
  if (!hotplug.ok()) return error_response(hotplug.error());
  return reply(c.put_memory_hotplug(*hotplug));
}

ApiResponse get_memory_hotplug(VmmController& c, const RouteRequest&) {
  auto status = c.memory_hotplug_status();
  if (!status.ok()) return error_response(status.error());
  return json_response(*status);
}

ApiResponse patch_memory_hotplug(VmmController& c, const RouteRequest& r) {
  auto update = parse_body(r, config::parse_memory_hotplug_size_update);
  if (!update.ok()) return error_response(update.error());
  return reply(c.patch_memory_hotplug(*update));
}

}  // namespace

void add_memory_hotplug_routes(RouteTable& t) {
  t.add(Method::kPut, "/hotplug/memory", put_memory_hotplug);
  t.add(Method::kGet, "/hotplug/memory", get_memory_hotplug);
  t.add(Method::kPatch, "/hotplug/memory", patch_memory_hotplug);
}

}  // namespace ignition::api
