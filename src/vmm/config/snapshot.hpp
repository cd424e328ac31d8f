// Snapshot bodies: PUT /snapshot/create and PUT /snapshot/load, as in Firecracker's
// SnapshotCreateParams / SnapshotLoadParams API objects.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

// Full: all guest memory. Diff: only pages dirtied since the last snapshot.
enum class SnapshotType { kFull, kDiff };

struct SnapshotCreateParams {
  SnapshotType snapshot_type = SnapshotType::kFull;
  std::string snapshot_path{};  // the microVM state
  std::string mem_file_path{};  // the guest memory

  bool operator==(const SnapshotCreateParams&) const = default;
};

// File: guest memory is loaded from a file. Uffd: a separate process serves page faults
// through userfaultfd; backend_path is the Unix socket it listens on.
enum class MemBackendType { kFile, kUffd };

struct MemBackend {
  MemBackendType backend_type = MemBackendType::kFile;
  std::string backend_path{};
  bool operator==(const MemBackend&) const = default;
};

// Points a restored interface at a different TAP device.
struct NetworkOverride {
  std::string iface_id{};
  std::string host_dev_name{};
  bool operator==(const NetworkOverride&) const = default;
};

// Points the restored vsock device at a different Unix socket.
struct VsockOverride {
  std::string uds_path{};
  bool operator==(const VsockOverride&) const = default;
};

// Snapshot: reuse what the snapshot recorded. 2M needs a Uffd backend.
enum class SnapshotHugePages { kSnapshot, kNone, kTransparent, k2M };

struct SnapshotLoadParams {
  std::string snapshot_path{};
  // The deprecated mem_file_path arrives here as a File backend.
  MemBackend mem_backend{};
  // Also set by the deprecated enable_diff_snapshots.
  bool track_dirty_pages = false;
  bool resume_vm = false;
  std::vector<NetworkOverride> network_overrides{};
  std::optional<VsockOverride> vsock_override{};
  bool clock_realtime = false;  // advance kvmclock by the wall time since the snapshot
  SnapshotHugePages huge_pages = SnapshotHugePages::kSnapshot;
  // The body used mem_file_path or enable_diff_snapshots: the API may warn.
  bool used_deprecated_fields = false;

  bool operator==(const SnapshotLoadParams&) const = default;
};

Result<SnapshotCreateParams> parse_snapshot_create_params(const nlohmann::json& j);
// Exactly one of mem_backend and mem_file_path must be present.
Result<SnapshotLoadParams> parse_snapshot_load_params(const nlohmann::json& j);
nlohmann::json to_json(const SnapshotCreateParams& p);
// Always in the current form: mem_backend, track_dirty_pages (no deprecated fields).
nlohmann::json to_json(const SnapshotLoadParams& p);

std::string_view to_string(SnapshotType t);
std::string_view to_string(MemBackendType t);
std::string_view to_string(SnapshotHugePages h);

}  // namespace ignition::config
