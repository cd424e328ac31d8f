// The snapshot store under one root directory:
//   snapshots/<name>/  an immutable base: state, memory, disks/<drive_id> (copies of its
//                      writable drives at snapshot time), manifest.json (kind, parent, time,
//                      config);
//   instances/<id>/    one clone's writable state: disks/<drive_id> (copies of the base's),
//                      vsock.sock, console.log, manifest.json (base, time, pid, MACs).
// A base is written once and never modified; clones map its memory copy-on-write.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/machine.hpp"

namespace ignition::vmm {

struct SnapshotInfo {
  std::string name;
  std::string kind;  // "full" or "diff"
  std::optional<std::string> parent;
  std::string created;
  uint64_t disk_bytes = 0;  // allocated on disk (sparse memory files count what they use)
  bool complete = false;    // has a state file and a manifest
};

struct InstanceInfo {
  std::string id;
  std::string base;
  std::string created;
  pid_t pid = 0;
  bool running = false;
};

// A new clone's directory and what its restore must use instead of the base's resources.
struct InstancePlan {
  std::string id;
  std::string dir;
  SnapshotPaths base;
  RestoreOptions options;
};

struct GcReport {
  std::vector<std::string> removed_instances;
  std::vector<std::string> removed_snapshots;  // incomplete ones (a snapshot that failed)
};

class SnapshotStore {
 public:
  explicit SnapshotStore(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  // Paths for a new snapshot `name` (its directory is created); an error if it exists.
  Result<SnapshotPaths> create(const std::string& name) const;
  // Paths of an existing snapshot.
  Result<SnapshotPaths> find(const std::string& name) const;
  // Completes snapshot `name` once its state and memory are written (the VM still paused):
  // copies its writable drives into the base and writes the manifest.
  Result<void> seal(const std::string& name, const config::VmConfig& config,
                    std::optional<std::string> parent) const;
  Result<std::vector<SnapshotInfo>> list_snapshots() const;
  // Rewrites a diff snapshot as a full one (no parents needed any more).
  Result<void> flatten(const std::string& name) const;

  // A new instance of `base` numbered `index` among its siblings: its directory, copies of
  // the base's writable drives, its own vsock socket and locally administered MACs;
  // `huge_pages` overrides the snapshot's pages for its RAM (RestoreOptions::huge_pages).
  Result<InstancePlan> create_instance(const std::string& base, uint32_t index,
                                       const std::optional<std::string>& huge_pages = {}) const;
  Result<InstancePlan> load_instance(const std::string& id) const;
  Result<void> set_instance_pid(const std::string& id, pid_t pid) const;
  Result<std::vector<InstanceInfo>> list_instances() const;
  // Removes instances whose process is gone and snapshots that were never sealed.
  Result<GcReport> gc() const;

 private:
  std::string dir(const std::string& name) const { return root_ + "/snapshots/" + name; }
  std::string instance_dir(const std::string& id) const { return root_ + "/instances/" + id; }
  std::string root_;
};

}  // namespace ignition::vmm
