#include "vmm/snapshot_store.hpp"

#include <filesystem>

namespace ignition::vmm {

namespace {
namespace fs = std::filesystem;

Result<void> check_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return err("snapshot name must be 1 to 64 characters");
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return err("snapshot name '{}' may only contain letters, digits, '-', '_' and '.'", name);
  if (name[0] == '.') return err("snapshot name '{}' may not start with '.'", name);
  return {};
}
}  // namespace

Result<SnapshotPaths> SnapshotStore::create(const std::string& name) const {
  IGN_TRY(check_name(name));
  std::error_code ec;
  if (fs::exists(dir(name), ec)) return err("snapshot '{}' already exists in {}", name, root_);
  fs::create_directories(dir(name), ec);
  if (ec) return err("snapshot store {}: {}", root_, ec.message());
  return SnapshotPaths{dir(name) + "/state", dir(name) + "/memory"};
}

Result<SnapshotPaths> SnapshotStore::find(const std::string& name) const {
  IGN_TRY(check_name(name));
  SnapshotPaths paths{dir(name) + "/state", dir(name) + "/memory"};
  std::error_code ec;
  if (!fs::exists(paths.state, ec))
    return err("no snapshot '{}' in {} (expected {})", name, root_, paths.state);
  return paths;
}

}  // namespace ignition::vmm
