// Instance routes: who this VMM is, its whole configuration, actions, and pause/resume.
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"
#include "vmm/config/instance_action.hpp"
#include "vmm/config/vm_state.hpp"

namespace ignition::api {

namespace {

ApiResponse get_instance_info(VmmController& c, const RouteRequest&) {
  return json_response(config::to_json(c.instance_info()));
}

ApiResponse get_version(VmmController& c, const RouteRequest&) {
  return json_response({{"firecracker_version", c.vmm_version()}});
}

ApiResponse get_vm_config(VmmController& c, const RouteRequest&) {
  // Firecracker's FullVmConfiguration has no "serial": PUT /serial is write-only there.
  auto body = config::to_json(c.vm_config());
  body.erase("serial");
  return json_response(body);
}

ApiResponse put_actions(VmmController& c, const RouteRequest& r) {
  auto action = parse_body(r, config::parse_instance_action);
  if (!action.ok()) return error_response(action.error());
  switch (action->action_type) {
    case config::ActionType::kInstanceStart:
      return reply(c.start());
    case config::ActionType::kSendCtrlAltDel:
      return reply(c.send_ctrl_alt_del());
    case config::ActionType::kFlushMetrics:
      return reply(c.flush_metrics());
  }
  return fault("unknown action");
}

ApiResponse patch_vm(VmmController& c, const RouteRequest& r) {
  auto update = parse_body(r, config::parse_vm_state);
  if (!update.ok()) return error_response(update.error());
  return reply(update->state == config::VmState::kPaused ? c.pause() : c.resume());
}

}  // namespace

void add_instance_routes(RouteTable& t) {
  t.add(Method::kGet, "/", get_instance_info);
  t.add(Method::kGet, "/version", get_version);
  t.add(Method::kGet, "/vm/config", get_vm_config);
  t.add(Method::kPut, "/actions", put_actions);
  t.add(Method::kPatch, "/vm", patch_vm);
}

}  // namespace ignition::api
