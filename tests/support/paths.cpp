#include "support/paths.hpp"

namespace ignition::test {

std::string ignition_binary() {
  return IGNITION_BIN;
}
std::string guest_image(const std::string& name) {
  return std::string(GUEST_DIR) + "/" + name;
}
std::string source_dir() {
  return SOURCE_DIR;
}

}  // namespace ignition::test
