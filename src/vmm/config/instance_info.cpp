// InstanceInfo serialization.
#include "vmm/config/instance_info.hpp"

namespace ignition::config {

nlohmann::json to_json(const InstanceInfo& i) {
  return {
      {"app_name", i.app_name}, {"id", i.id}, {"state", i.state}, {"vmm_version", i.vmm_version}};
}

}  // namespace ignition::config
