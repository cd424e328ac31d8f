// /cpu-config: a custom CPU template (CPUID, MSR and KVM capability modifiers).
#include "vmm/config/cpu_config.hpp"
#include "api/routes/common.hpp"
#include "api/routes/routes.hpp"

namespace ignition::api {

namespace {

ApiResponse put_cpu_config(VmmController& c, const RouteRequest& r) {
  auto cpu = parse_body(r, config::parse_cpu_config);
  if (!cpu.ok()) return error_response(cpu.error());
  return reply(c.put_cpu_config(*cpu));
}

}  // namespace

void add_cpu_config_routes(RouteTable& t) {
  t.add(Method::kPut, "/cpu-config", put_cpu_config);
}

}  // namespace ignition::api
