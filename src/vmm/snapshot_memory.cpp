#include "vmm/snapshot_memory.hpp"

#include <filesystem>

#include "memory/uffd.hpp"
#include "snapshot/codec.hpp"
#include "vmm/config/json_fields.hpp"

namespace ignition::vmm {

std::vector<uint8_t> encode_layout(const GuestMemory& memory) {
  snapshot::Encoder e;
  e.u64(memory.regions().size());
  for (const auto& r : memory.regions()) {
    e.u64(r.gpa);
    e.u64(r.size);
  }
  return std::move(e).take();
}

Result<std::vector<GuestMemory::Range>> decode_layout(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  std::vector<GuestMemory::Range> ranges(d.count(16));
  for (auto& r : ranges) {
    r.gpa = d.u64();
    r.size = d.u64();
  }
  IGN_TRY(d.finish());
  if (ranges.empty()) return err("snapshot has no guest memory");
  return ranges;
}

std::vector<uint8_t> encode_paths(const std::vector<std::string>& paths) {
  snapshot::Encoder e;
  e.u64(paths.size());
  for (const auto& p : paths) e.bytes({reinterpret_cast<const uint8_t*>(p.data()), p.size()});
  return std::move(e).take();
}

Result<std::vector<std::string>> decode_paths(std::span<const uint8_t> bytes) {
  snapshot::Decoder d(bytes);
  std::vector<std::string> paths(d.count(8));
  for (auto& p : paths) {
    auto b = d.bytes();
    p.assign(b.begin(), b.end());
  }
  IGN_TRY(d.finish());
  return paths;
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

Result<config::VmConfig> read_snapshot_config(const snapshot::SnapshotReader& reader) {
  IGN_ASSIGN_OR_RETURN(auto bytes, reader.section(kConfigSection));
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  IGN_ASSIGN_OR_RETURN(auto j, config::parse_json_text(text));
  auto config = config::parse_vm_config(j);
  if (!config.ok()) return context(config.error(), "snapshot config");
  return config;
}

Result<std::vector<std::string>> snapshot_memory_parents(const snapshot::SnapshotReader& reader) {
  if (!reader.has_section(kMemoryParentsSection)) return std::vector<std::string>{};
  IGN_ASSIGN_OR_RETURN(auto bytes, reader.section(kMemoryParentsSection));
  auto parents = decode_paths(bytes);
  if (!parents.ok()) return context(parents.error(), "snapshot memory parents");
  return parents;
}

Result<GuestMemory> load_snapshot_memory(const std::string& memory_path,
                                         const std::vector<std::string>& parents,
                                         const std::vector<GuestMemory::Range>& ranges) {
  if (parents.empty()) return GuestMemory::map_file_private(memory_path, ranges);
  IGN_ASSIGN_OR_RETURN(auto memory, GuestMemory::map_file_private(parents.front(), ranges));
  for (size_t i = 1; i < parents.size(); ++i) IGN_TRY(memory.apply_diff(parents[i]));
  IGN_TRY(memory.apply_diff(memory_path));
  return memory;
}

Result<GuestMemory> load_snapshot_memory_uffd(const std::string& socket_path,
                                              const std::vector<std::string>& parents,
                                              const std::vector<GuestMemory::Range>& ranges,
                                              GuestMemory::Pages pages) {
  if (!parents.empty()) {
    return err(
        "a diff snapshot cannot be restored with the Uffd memory backend: its handler serves "
        "one memory file, and this snapshot's memory is layered on {} other file(s); flatten "
        "it into a full snapshot first",
        parents.size());
  }
  IGN_ASSIGN_OR_RETURN(auto memory, GuestMemory::create_private_anonymous(ranges, pages));
  IGN_TRY(attach_uffd_handler(memory, socket_path));
  return memory;
}

Result<void> flatten_snapshot(const std::string& state_path, const std::string& memory_path) {
  IGN_ASSIGN_OR_RETURN(auto reader, snapshot::SnapshotReader::open(state_path));
  IGN_ASSIGN_OR_RETURN(auto parents, snapshot_memory_parents(reader));
  if (parents.empty()) return {};
  IGN_ASSIGN_OR_RETURN(auto layout_bytes, reader.section(kLayoutSection));
  IGN_ASSIGN_OR_RETURN(auto ranges, decode_layout(layout_bytes));
  IGN_ASSIGN_OR_RETURN(auto memory, load_snapshot_memory(memory_path, parents, ranges));
  // Memory first: until the state file forgets the parents, the old diff (now a full
  // file) still layers correctly over them, so a crash in between loses nothing.
  IGN_TRY(memory.save(memory_path));
  snapshot::SnapshotWriter writer{std::string(reader.tag())};
  for (const auto& name : reader.section_names()) {
    if (name == kMemoryParentsSection) continue;
    IGN_ASSIGN_OR_RETURN(auto payload, reader.section(name));
    IGN_TRY(writer.add_section(name, {payload.begin(), payload.end()}));
  }
  IGN_TRY(writer.add_section(kMemoryParentsSection, encode_paths({})));
  return writer.write(state_path);
}

}  // namespace ignition::vmm
