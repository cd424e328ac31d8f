// The userfaultfd memory backend's handshake (Firecracker's `Uffd`): the VMM registers its
// anonymous guest RAM with a userfaultfd and sends it, with the RAM's layout, to a page-fault
// handler process on a Unix socket; the handler receives both here too.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition {

inline constexpr uint64_t kUffdPageSize = 4096;
inline constexpr uint64_t kUffdHugePageSize = 2ull << 20;  // guest RAM on 2M hugetlbfs pages

// Where one region of guest RAM is in the VMM and in the memory file (Firecracker's
// GuestRegionUffdMapping).
struct UffdMapping {
  uint64_t base_host_virt_addr = 0;
  uint64_t size = 0;
  uint64_t offset = 0;  // of the region's contents in the memory file
  uint64_t page_size = kUffdPageSize;

  bool operator==(const UffdMapping&) const = default;
};

// The handshake's body: a JSON array of {base_host_virt_addr, size, offset, page_size}.
// Firecracker also still sends the deprecated `page_size_kib` (in bytes, despite its name),
// and so do we, for handlers written against older versions; decoding takes either.
std::string encode_uffd_mappings(const std::vector<UffdMapping>& mappings);
Result<std::vector<UffdMapping>> decode_uffd_mappings(std::string_view text);
// One mapping per region of `memory`, offsets as in its memory file.
std::vector<UffdMapping> uffd_mappings(const GuestMemory& memory);

// A userfaultfd that reports faults from the kernel too (KVM touching guest RAM for a vCPU),
// and remove events (the balloon's madvise). Non-blocking, close-on-exec. Where the system
// call is refused for kernel faults (vm.unprivileged_userfaultfd=0 without CAP_SYS_PTRACE),
// it is made through /dev/userfaultfd.
Result<UniqueFd> create_userfaultfd();
// Registers [addr, addr+len) for missing-page faults, and checks that a handler can resolve
// them there (copy and wake; on 4 KiB pages also zero page, which hugetlbfs lacks).
Result<void> register_missing_pages(int uffd, void* addr, uint64_t len, uint64_t page_size);

// Connects to the handler listening at `socket_path` and sends it `mappings` with `uffd`
// attached, in one message. Returns the connection: the handler learns that the VMM is done
// with the memory when it closes.
Result<UniqueFd> send_uffd_handshake(const std::string& socket_path,
                                     const std::vector<UffdMapping>& mappings, int uffd);

struct UffdHandshake {
  std::vector<UffdMapping> mappings;
  UniqueFd uffd;
};
// The handler's side: the mappings and the userfaultfd from a connection the VMM made.
Result<UffdHandshake> receive_uffd_handshake(int socket);

// Registers all of `memory` (create_private_anonymous) with a new userfaultfd and hands it to
// the handler at `socket_path`. `memory` keeps the userfaultfd open, so that a handler that
// dies leaves the guest waiting rather than silently reading zeros, and the connection.
Result<void> attach_uffd_handler(GuestMemory& memory, const std::string& socket_path);

}  // namespace ignition
