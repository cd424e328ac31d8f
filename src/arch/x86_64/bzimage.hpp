// bzImage kernels: the setup header at 0x1f1 describes the image; the protected-mode
// kernel after the setup sectors is loaded at code32_start and entered at its 64-bit
// entry point (load address + 0x200).
#pragma once

#include "arch/x86_64/boot/image_source.hpp"
#include "arch/x86_64/kernel_loader.hpp"

namespace ignition::x86_64 {

// True when the image has the "HdrS" magic at 0x202.
bool is_bzimage(const boot::ImageSource& image);

// Requires boot protocol 2.06+ and a 64-bit entry point (XLF_KERNEL_64, 2.12+).
Result<LoadedKernel> load_bzimage(GuestMemory& mem, const boot::ImageSource& image);

}  // namespace ignition::x86_64
