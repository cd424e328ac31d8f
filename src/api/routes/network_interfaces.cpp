// /network-interfaces/{iface_id}: virtio-net devices before boot, rate limiters after.
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"
#include "vmm/config/network_interface.hpp"

namespace ignition::api {

namespace {

ApiResponse id_mismatch(std::string_view path_id, std::string_view body_id) {
  return fault(fmt::format("The id from the path [{}] does not match the id from the body [{}]!",
                           path_id, body_id));
}

ApiResponse put_network_interface(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto net = parse_body(r, config::parse_network_interface);
  if (!net.ok()) return error_response(net.error());
  if (net->iface_id != *id) return id_mismatch(*id, net->iface_id);
  return reply(c.put_network_interface(*net));
}

ApiResponse patch_network_interface(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto update = parse_body(r, config::parse_partial_network_interface);
  if (!update.ok()) return error_response(update.error());
  if (update->iface_id != *id) return id_mismatch(*id, update->iface_id);
  return reply(c.patch_network_interface(*update));
}

}  // namespace

void add_network_interface_routes(RouteTable& t) {
  t.add(Method::kPut, "/network-interfaces/{iface_id}", put_network_interface);
  t.add(Method::kPatch, "/network-interfaces/{iface_id}", patch_network_interface);
}

}  // namespace ignition::api
