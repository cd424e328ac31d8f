// Snapshot create/load body parsing and serialization.
#include "vmm/config/snapshot.hpp"

#include "vmm/config/json_fields.hpp"
#include "vmm/config/resource_id.hpp"

namespace ignition::config {

namespace {

constexpr size_t kMaxIfaceNameLen = 15;  // IFNAMSIZ - 1

Result<std::string> string_value(const nlohmann::json& j, std::string_view field) {
  if (!j.is_string()) return type_error(field, "a string", j);
  return j.get<std::string>();
}

Result<MemBackend> parse_mem_backend(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"backend_type", "backend_path"}));
  MemBackend b;
  IGN_ASSIGN_OR_RETURN(std::string type, r.required_string("backend_type"));
  IGN_ASSIGN_OR_RETURN(b.backend_type,
                       parse_enum<MemBackendType>(
                           "backend_type", type,
                           {{"File", MemBackendType::kFile}, {"Uffd", MemBackendType::kUffd}}));
  IGN_ASSIGN_OR_RETURN(b.backend_path, r.required_nonempty_string("backend_path"));
  return b;
}

Result<NetworkOverride> parse_network_override(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"iface_id", "host_dev_name"}));
  NetworkOverride o;
  IGN_ASSIGN_OR_RETURN(o.iface_id, r.required_string("iface_id"));
  IGN_TRY(validate_resource_id("iface_id", o.iface_id));
  IGN_ASSIGN_OR_RETURN(o.host_dev_name, r.required_nonempty_string("host_dev_name"));
  if (o.host_dev_name.size() > kMaxIfaceNameLen) {
    return err("field 'host_dev_name' is too long: '{}' has {} bytes, the limit is {}",
               o.host_dev_name, o.host_dev_name.size(), kMaxIfaceNameLen);
  }
  return o;
}

Result<VsockOverride> parse_vsock_override(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r, FieldReader::open(j, {"uds_path"}));
  VsockOverride o;
  IGN_ASSIGN_OR_RETURN(o.uds_path, r.required_nonempty_string("uds_path"));
  return o;
}

Result<SnapshotHugePages> parse_huge_pages(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(std::string s, string_value(j, "huge_pages"));
  return parse_enum<SnapshotHugePages>("huge_pages", s,
                                       {{"Snapshot", SnapshotHugePages::kSnapshot},
                                        {"None", SnapshotHugePages::kNone},
                                        {"Transparent", SnapshotHugePages::kTransparent},
                                        {"2M", SnapshotHugePages::k2M}});
}

}  // namespace

std::string_view to_string(SnapshotType t) {
  return t == SnapshotType::kDiff ? "Diff" : "Full";
}

std::string_view to_string(MemBackendType t) {
  return t == MemBackendType::kUffd ? "Uffd" : "File";
}

std::string_view to_string(SnapshotHugePages h) {
  switch (h) {
    case SnapshotHugePages::kSnapshot:
      return "Snapshot";
    case SnapshotHugePages::kNone:
      return "None";
    case SnapshotHugePages::kTransparent:
      return "Transparent";
    case SnapshotHugePages::k2M:
      return "2M";
  }
  return "Snapshot";
}

Result<SnapshotCreateParams> parse_snapshot_create_params(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(auto r,
                       FieldReader::open(j, {"snapshot_type", "snapshot_path", "mem_file_path"}));
  SnapshotCreateParams p;
  IGN_ASSIGN_OR_RETURN(std::optional<std::string> type, r.optional_string("snapshot_type"));
  if (type) {
    IGN_ASSIGN_OR_RETURN(
        p.snapshot_type,
        parse_enum<SnapshotType>("snapshot_type", *type,
                                 {{"Full", SnapshotType::kFull}, {"Diff", SnapshotType::kDiff}}));
  }
  IGN_ASSIGN_OR_RETURN(p.snapshot_path, r.required_nonempty_string("snapshot_path"));
  IGN_ASSIGN_OR_RETURN(p.mem_file_path, r.required_nonempty_string("mem_file_path"));
  return p;
}

Result<SnapshotLoadParams> parse_snapshot_load_params(const nlohmann::json& j) {
  IGN_ASSIGN_OR_RETURN(
      auto r, FieldReader::open(
                  j, {"snapshot_path", "mem_file_path", "mem_backend", "enable_diff_snapshots",
                      "track_dirty_pages", "resume_vm", "network_overrides", "vsock_override",
                      "clock_realtime", "huge_pages"}));
  SnapshotLoadParams p;
  IGN_ASSIGN_OR_RETURN(p.snapshot_path, r.required_nonempty_string("snapshot_path"));
  IGN_ASSIGN_OR_RETURN(std::optional<std::string> mem_file, r.optional_string("mem_file_path"));
  IGN_ASSIGN_OR_RETURN(std::optional<MemBackend> backend,
                       r.optional_with("mem_backend", parse_mem_backend));
  // Firecracker's messages for the two mutually exclusive memory sources.
  if (mem_file && backend) {
    return err("too many fields: either `mem_backend` or `mem_file_path` exclusively is required");
  }
  if (!mem_file && !backend) {
    return err("missing field: either `mem_backend` or `mem_file_path` is required");
  }
  if (mem_file) {
    if (mem_file->empty()) return err("field 'mem_file_path' must not be empty");
    p.mem_backend = MemBackend{MemBackendType::kFile, *mem_file};
  } else {
    p.mem_backend = *backend;
  }
  IGN_ASSIGN_OR_RETURN(bool diff, r.bool_or("enable_diff_snapshots", false));
  IGN_ASSIGN_OR_RETURN(bool track, r.bool_or("track_dirty_pages", false));
  p.track_dirty_pages = diff || track;
  p.used_deprecated_fields = mem_file.has_value() || diff;
  IGN_ASSIGN_OR_RETURN(p.resume_vm, r.bool_or("resume_vm", false));
  IGN_ASSIGN_OR_RETURN(p.network_overrides,
                       r.array_with("network_overrides", parse_network_override));
  IGN_ASSIGN_OR_RETURN(p.vsock_override, r.optional_with("vsock_override", parse_vsock_override));
  IGN_ASSIGN_OR_RETURN(p.clock_realtime, r.bool_or("clock_realtime", false));
  IGN_ASSIGN_OR_RETURN(std::optional<SnapshotHugePages> huge,
                       r.optional_with("huge_pages", parse_huge_pages));
  p.huge_pages = huge.value_or(SnapshotHugePages::kSnapshot);
  if (p.huge_pages == SnapshotHugePages::k2M &&
      p.mem_backend.backend_type != MemBackendType::kUffd) {
    return err("huge_pages \"2M\" needs a \"Uffd\" mem_backend");
  }
  return p;
}

nlohmann::json to_json(const SnapshotCreateParams& p) {
  return {{"snapshot_type", to_string(p.snapshot_type)},
          {"snapshot_path", p.snapshot_path},
          {"mem_file_path", p.mem_file_path}};
}

nlohmann::json to_json(const SnapshotLoadParams& p) {
  nlohmann::json overrides = nlohmann::json::array();
  for (const auto& o : p.network_overrides) {
    overrides.push_back({{"iface_id", o.iface_id}, {"host_dev_name", o.host_dev_name}});
  }
  nlohmann::json j = {{"snapshot_path", p.snapshot_path},
                      {"mem_backend",
                       {{"backend_type", to_string(p.mem_backend.backend_type)},
                        {"backend_path", p.mem_backend.backend_path}}},
                      {"track_dirty_pages", p.track_dirty_pages},
                      {"resume_vm", p.resume_vm},
                      {"network_overrides", overrides},
                      {"clock_realtime", p.clock_realtime},
                      {"huge_pages", to_string(p.huge_pages)}};
  if (p.vsock_override) j["vsock_override"] = {{"uds_path", p.vsock_override->uds_path}};
  return j;
}

}  // namespace ignition::config
