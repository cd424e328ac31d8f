// Resource id validation.
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

Result<void> validate_resource_id(std::string_view field, std::string_view id) {
  if (id.empty()) return err("field '{}' must not be empty", field);
  for (char c : id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      return err("field '{}' is invalid ('{}'): ids may only contain letters, digits and '_'",
                 field, id);
    }
  }
  return {};
}

}  // namespace ignition::config
