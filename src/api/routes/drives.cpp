// /drives/{drive_id}: block devices before boot, their backing file and rate limiter after.
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"
#include "vmm/config/drive.hpp"

namespace ignition::api {

namespace {

constexpr std::string_view kIdMismatch =
    "The id from the path does not match the id from the body!";

ApiResponse put_drive(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto drive = parse_body(r, config::parse_drive);
  if (!drive.ok()) return error_response(drive.error());
  if (drive->drive_id != *id) return fault(kIdMismatch);
  return reply(c.put_drive(*drive));
}

ApiResponse patch_drive(VmmController& c, const RouteRequest& r) {
  auto id = checked_id(r);
  if (!id.ok()) return error_response(id.error());
  auto update = parse_body(r, config::parse_partial_drive);
  if (!update.ok()) return error_response(update.error());
  if (update->drive_id != *id) return fault(kIdMismatch);
  return reply(c.patch_drive(*update));
}

}  // namespace

void add_drive_routes(RouteTable& t) {
  t.add(Method::kPut, "/drives/{drive_id}", put_drive);
  t.add(Method::kPatch, "/drives/{drive_id}", patch_drive);
}

}  // namespace ignition::api
