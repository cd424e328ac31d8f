// ELF64 kernels (vmlinux): PT_LOAD segments go to their physical addresses; a Xen
// PHYS32_ENTRY note (PT_NOTE) advertises a PVH entry point.
#pragma once

#include "arch/x86_64/boot/image_source.hpp"
#include "arch/x86_64/kernel_loader.hpp"

namespace ignition::x86_64 {

// True when the image starts with the ELF magic (whatever its class or machine).
bool is_elf_image(const boot::ImageSource& image);

// Validates every header against the image and guest RAM before writing anything, then
// loads the segments (zeroing p_memsz beyond p_filesz).
Result<LoadedKernel> load_elf_kernel(GuestMemory& mem, const boot::ImageSource& image,
                                     bool prefer_pvh);

}  // namespace ignition::x86_64
