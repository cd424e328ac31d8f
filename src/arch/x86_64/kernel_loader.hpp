// Loads a guest kernel into guest memory, Firecracker style (no firmware): detects the
// image format (ELF vmlinux, PVH-noted ELF, bzImage) and says how to enter it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "arch/x86_64/boot/image_source.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

// How the boot vCPU enters the kernel.
enum class BootProtocol {
  Linux64,  // 64-bit long mode, RSI = zero page (Documentation/arch/x86/boot.rst)
  Pvh,      // 32-bit protected mode, paging off, EBX = hvm_start_info (Xen PVH ABI)
};

const char* to_string(BootProtocol protocol);

struct LoadedKernel {
  BootProtocol protocol = BootProtocol::Linux64;
  uint64_t entry = 0;       // guest-physical entry point for `protocol`
  uint64_t load_start = 0;  // lowest guest-physical byte the kernel occupies
  uint64_t load_end = 0;    // one past the highest (for bzImage: includes init_size)
  // bzImage only: the setup header bytes from file offset 0x1f1 up to 0x202 + byte[0x201],
  // to be copied into boot_params.hdr. ELF kernels have none.
  std::optional<std::vector<uint8_t>> setup_header;
  std::string format;  // "elf", "pvh" or "bzimage"
  // Highest guest-physical address the initrd's last byte may occupy.
  uint64_t initrd_addr_max = 0xffffffff;
  // Longest command line the kernel accepts, without the terminating NUL.
  uint64_t cmdline_max = 0;
};

// Loads the kernel image at `path`. Errors name the file only where the image source
// does (open/read failures); callers add their own context. With `prefer_pvh`, an ELF that carries
// a Xen PHYS32_ENTRY note boots through PVH (as Firecracker does); otherwise through its 64-bit ELF
// entry.
Result<LoadedKernel> load_kernel(GuestMemory& mem, const std::string& path, bool prefer_pvh = true);
// The same from bytes (tests, fuzzing).
Result<LoadedKernel> load_kernel_bytes(GuestMemory& mem, std::span<const uint8_t> image,
                                       bool prefer_pvh = true);
Result<LoadedKernel> load_kernel_from(GuestMemory& mem, const boot::ImageSource& image,
                                      bool prefer_pvh = true);

}  // namespace ignition::x86_64
