// Places the initrd (initramfs) in guest RAM: as high as possible in low memory, below
// the 32-bit limit and the kernel's initrd_addr_max, above the kernel.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "arch/x86_64/boot/image_source.hpp"
#include "arch/x86_64/kernel_loader.hpp"
#include "base/result.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {

struct InitrdPlacement {
  uint64_t addr;  // guest-physical, page-aligned
  uint64_t size;  // bytes of initrd data
};

// Where an initrd of `size` bytes goes for `kernel`, without writing anything.
Result<uint64_t> initrd_address(const GuestMemory& mem, const LoadedKernel& kernel, uint64_t size);

Result<InitrdPlacement> load_initrd(GuestMemory& mem, const std::string& path,
                                    const LoadedKernel& kernel);
Result<InitrdPlacement> load_initrd_bytes(GuestMemory& mem, std::span<const uint8_t> initrd,
                                          const LoadedKernel& kernel);
Result<InitrdPlacement> load_initrd_from(GuestMemory& mem, const boot::ImageSource& initrd,
                                         const LoadedKernel& kernel);

}  // namespace ignition::x86_64
