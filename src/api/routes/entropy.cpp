// /entropy: the virtio-rng device.
#include "vmm/config/entropy.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_entropy(VmmController& c, const RouteRequest& r) {
  auto entropy = parse_body(r, config::parse_entropy);
  if (!entropy.ok()) return error_response(entropy.error());
  return reply(c.put_entropy(*entropy));
}

}  // namespace

void add_entropy_routes(RouteTable& t) {
  t.add(Method::kPut, "/entropy", put_entropy);
}

}  // namespace ignition::api
