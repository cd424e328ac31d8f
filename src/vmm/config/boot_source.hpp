// boot-source: the kernel, its initrd and command line, as in Firecracker's API model.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

struct BootSource {
  std::string kernel_image_path{};
  std::optional<std::string> initrd_path{};
  // nullopt: the VMM's default command line applies.
  std::optional<std::string> boot_args{};

  bool operator==(const BootSource&) const = default;
};

// kernel_image_path is required and non-empty; boot_args must be printable ASCII and fit
// the guest's command line area.
Result<BootSource> parse_boot_source(const nlohmann::json& j);
nlohmann::json to_json(const BootSource& b);

}  // namespace ignition::config
