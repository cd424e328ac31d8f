// /pmem/{id}: virtio-pmem devices before boot, their rate limiter after.
#include "vmm/config/pmem.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

constexpr std::string_view kIdMismatch =
    "The id from the path does not match the id from the body!";

ApiResponse put_pmem(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto pmem = parse_body(r, config::parse_pmem);
  if (!pmem.ok()) return error_response(pmem.error());
  if (pmem->id != *id) return fault(kIdMismatch);
  return reply(c.put_pmem(*pmem));
}

ApiResponse patch_pmem(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto update = parse_body(r, config::parse_partial_pmem);
  if (!update.ok()) return error_response(update.error());
  if (update->id != *id) return fault(kIdMismatch);
  return reply(c.patch_pmem(*update));
}

}  // namespace

void add_pmem_routes(RouteTable& t) {
  t.add(Method::kPut, "/pmem/{id}", put_pmem);
  t.add(Method::kPatch, "/pmem/{id}", patch_pmem);
}

}  // namespace ignition::api
