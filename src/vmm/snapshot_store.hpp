// The snapshot store: a directory of immutable bases, `snapshots/<name>/{state,memory}`.
// A base is written once and never modified; restores map its memory copy-on-write.
#pragma once

#include <string>

#include "base/result.hpp"
#include "vmm/machine.hpp"

namespace ignition::vmm {

class SnapshotStore {
 public:
  explicit SnapshotStore(std::string root) : root_(std::move(root)) {}

  // Paths for a new snapshot `name` (its directory is created); an error if it exists.
  Result<SnapshotPaths> create(const std::string& name) const;
  // Paths of an existing snapshot.
  Result<SnapshotPaths> find(const std::string& name) const;

 private:
  std::string dir(const std::string& name) const { return root_ + "/snapshots/" + name; }
  std::string root_;
};

}  // namespace ignition::vmm
