// boot-source: the kernel, its initrd and command line, as in Firecracker's API model.
#pragma once

#include <optional>
#include <string>

namespace ignition::config {

struct BootSource {
  std::string kernel_image_path;
  std::optional<std::string> initrd_path;
  std::optional<std::string> boot_args;
};

}  // namespace ignition::config
