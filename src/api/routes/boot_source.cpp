// /boot-source: the kernel, initrd and command line.
#include "vmm/config/boot_source.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_boot_source(VmmController& c, const RouteRequest& r) {
  auto bs = parse_body(r, config::parse_boot_source);
  if (!bs.ok()) return error_response(bs.error());
  return reply(c.put_boot_source(*bs));
}

}  // namespace

void add_boot_source_routes(RouteTable& t) {
  t.add(Method::kPut, "/boot-source", put_boot_source);
}

}  // namespace ignition::api
