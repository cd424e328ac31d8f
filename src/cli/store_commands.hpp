// The store's commands: clone a base into N instances (each its own process), run one
// instance, and list / garbage-collect / flatten what the store holds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "vmm/snapshot_store.hpp"

namespace ignition::cli {

// Creates `count` instances of snapshot `base` and starts each as its own process
// (`ignition instance <id>`, console in instances/<id>/console.log). Waits for all of them
// unless `detach`; returns the exit status for the command. `huge_pages`: the clones' RAM
// pages instead of the snapshot's (a 2M base clones onto 4 KiB pages with "None").
int clone_command(const vmm::SnapshotStore& store, const std::string& base, uint32_t count,
                  bool detach, const std::optional<std::string>& huge_pages = {});
int store_list_command(const vmm::SnapshotStore& store);
int store_gc_command(const vmm::SnapshotStore& store);
int store_flatten_command(const vmm::SnapshotStore& store, const std::string& name);

}  // namespace ignition::cli
