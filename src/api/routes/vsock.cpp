// /vsock: the virtio-vsock device and its host Unix socket.
#include "vmm/config/vsock.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_vsock(VmmController& c, const RouteRequest& r) {
  auto vsock = parse_body(r, config::parse_vsock);
  if (!vsock.ok()) return error_response(vsock.error());
  ApiResponse response = reply(c.put_vsock(*vsock));
  response.deprecated = body_has_field(r, "vsock_id");
  return response;
}

}  // namespace

void add_vsock_routes(RouteTable& t) {
  t.add(Method::kPut, "/vsock", put_vsock);
}

}  // namespace ignition::api
