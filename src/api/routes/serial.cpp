// /serial: where the guest's serial console output goes.
#include "vmm/config/serial.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_serial(VmmController& c, const RouteRequest& r) {
  auto serial = parse_body(r, config::parse_serial);
  if (!serial.ok()) return error_response(serial.error());
  return reply(c.put_serial(*serial));
}

}  // namespace

void add_serial_routes(RouteTable& t) {
  t.add(Method::kPut, "/serial", put_serial);
}

}  // namespace ignition::api
