// Resource ids (drive_id, iface_id, pmem id): the same rule as Firecracker's API paths.
#pragma once

#include <string_view>

#include "base/result.hpp"

namespace ignition::config {

// Non-empty, ASCII letters, digits and '_' only: ids appear in URL paths (/drives/{id}).
Result<void> validate_resource_id(std::string_view field, std::string_view id);

}  // namespace ignition::config
