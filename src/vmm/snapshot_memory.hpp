// Snapshot memory files: a full snapshot's is all of RAM; a diff snapshot's holds only the
// pages written since its parent, and its state file names the files it layers on.
#pragma once

#include <string>
#include <vector>

#include "base/result.hpp"
#include "memory/guest_memory.hpp"
#include "snapshot/snapshot_file.hpp"
#include "vmm/config/vm_config.hpp"

namespace ignition::vmm {

// The memory files a diff snapshot's memory is layered on, root first (absent or empty for
// a full snapshot), as absolute paths.
inline constexpr const char* kMemoryParentsSection = "memory.parents";
// The guest-physical ranges of RAM, in memory-file order.
inline constexpr const char* kLayoutSection = "memory.layout";

std::vector<uint8_t> encode_layout(const GuestMemory& memory);
Result<std::vector<GuestMemory::Range>> decode_layout(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode_paths(const std::vector<std::string>& paths);
Result<std::vector<std::string>> decode_paths(std::span<const uint8_t> bytes);
std::string absolute_path(const std::string& path);

inline constexpr const char* kConfigSection = "config";
// The machine configuration a snapshot was taken with.
Result<config::VmConfig> read_snapshot_config(const snapshot::SnapshotReader& reader);

// The parents recorded in a snapshot's state file.
Result<std::vector<std::string>> snapshot_memory_parents(const snapshot::SnapshotReader& reader);
// RAM for a restore: the root file mapped copy-on-write, each diff copied over it in order,
// `memory_path` (the snapshot's own file) last.
Result<GuestMemory> load_snapshot_memory(const std::string& memory_path,
                                         const std::vector<std::string>& parents,
                                         const std::vector<GuestMemory::Range>& ranges);
// RAM for a restore through a userfaultfd page-fault handler (Firecracker's Uffd backend):
// anonymous memory whose pages the handler listening at `socket_path` fills in from the
// snapshot's memory file. A diff snapshot (non-empty `parents`) is refused: the handler
// serves one file. `pages`: kHuge2M puts RAM on 2 MiB hugetlbfs pages the handler fills
// 2 MiB at a time (Firecracker's huge-page restore).
Result<GuestMemory> load_snapshot_memory_uffd(
    const std::string& socket_path, const std::vector<std::string>& parents,
    const std::vector<GuestMemory::Range>& ranges,
    GuestMemory::Pages pages = GuestMemory::Pages::kSmall);
// Rewrites a diff snapshot as a full one: its memory file becomes the whole layered RAM and
// its state file forgets the parents. A full snapshot is left as it is.
Result<void> flatten_snapshot(const std::string& state_path, const std::string& memory_path);

}  // namespace ignition::vmm
