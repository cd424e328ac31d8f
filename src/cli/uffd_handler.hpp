// `ignition uffd-handler`: an example page-fault handler for snapshots restored with the Uffd
// memory backend, like Firecracker's example handlers. It listens on a Unix socket, takes one
// VMM's userfaultfd and memory layout, serves that VMM's faults from the snapshot's memory
// file until the VMM is done, and prints what it served.
#pragma once

#include <string>

namespace ignition::cli {

// The exit status: 0 once the VMM closed its end, 1 on any error.
int uffd_handler_command(const std::string& socket_path, const std::string& memory_path);

}  // namespace ignition::cli
