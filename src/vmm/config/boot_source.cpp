// boot-source parsing and serialization.
#include "vmm/config/boot_source.hpp"

#include "arch/x86_64/layout.hpp"
#include "vmm/config/json_fields.hpp"

namespace ignition::config {

namespace {

Result<void> check_cmdline(const std::string& args) {
  // The loader copies the command line with its NUL into a fixed area.
  if (args.size() >= x86_64::kCmdlineMaxSize) {
    return err("field 'boot_args' is too long: {} bytes, the limit is {}", args.size(),
               x86_64::kCmdlineMaxSize - 1);
  }
  for (size_t i = 0; i < args.size(); ++i) {
    auto c = static_cast<unsigned char>(args[i]);
    if (c < 0x20 || c > 0x7e) {
      return err("field 'boot_args' has a non-printable character (0x{:02x}) at offset {}", c, i);
    }
  }
  return {};
}

}  // namespace

Result<BootSource> parse_boot_source(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r,
                       FieldReader::open(j, {"kernel_image_path", "initrd_path", "boot_args"}));
  BootSource b;
  IGN_ASSIGN_OR_RETURN(b.kernel_image_path, r.required_nonempty_string("kernel_image_path"));
  IGN_ASSIGN_OR_RETURN(b.initrd_path, r.optional_string("initrd_path"));
  IGN_ASSIGN_OR_RETURN(b.boot_args, r.optional_string("boot_args"));
  if (b.initrd_path && b.initrd_path->empty()) {
    return err("field 'initrd_path' must not be empty");
  }
  if (b.boot_args) IGN_TRY(check_cmdline(*b.boot_args));
  return b;
}

nlohmann::json to_json(const BootSource& b) {
  return {{"kernel_image_path", b.kernel_image_path},
          {"initrd_path", or_null(b.initrd_path)},
          {"boot_args", or_null(b.boot_args)}};
}

}  // namespace ignition::config
