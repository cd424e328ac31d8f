#include "arch/x86_64/boot_params.hpp"

#include <algorithm>
#include <cstring>

#include "arch/x86_64/e820.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

Result<BootParams> build_boot_params(const GuestMemory& mem, const LoadedKernel& kernel,
                                     const BootInfo& info) {
  BootParams bp{};
  SetupHeader hdr{};
  if (kernel.setup_header) {
    // boot.rst: the kernel's own setup header goes into the zero page, then the loader
    // fills in its fields.
    std::memcpy(&hdr, kernel.setup_header->data(),
                std::min(kernel.setup_header->size(), sizeof(SetupHeader)));
  } else {
    hdr.kernel_alignment = kDefaultKernelAlignment;
    hdr.loadflags = kLoadFlagLoadedHigh;
  }
  hdr.boot_flag = kBootFlagMagic;
  hdr.header = kSetupHeaderMagic;
  hdr.type_of_loader = kLoaderTypeUndefined;
  hdr.cmd_line_ptr = static_cast<uint32_t>(kCmdlineAddr);
  // Like Firecracker: the length actually written, NUL included.
  hdr.cmdline_size = static_cast<uint32_t>(info.cmdline.size() + 1);
  if (info.initrd) {
    const uint64_t addr = info.initrd->addr;
    const uint64_t size = info.initrd->size;
    if (size == 0) return err("initrd is empty");
    if (addr + size < addr || addr + size - 1 > kernel.initrd_addr_max)
      return err("initrd at [{:#x}, {:#x}) is above the kernel's initrd_addr_max {:#x}", addr,
                 addr + size, kernel.initrd_addr_max);
    if (size > UINT32_MAX) return err("initrd of {:#x} bytes is too large", size);
    hdr.ramdisk_image = static_cast<uint32_t>(addr);
    hdr.ramdisk_size = static_cast<uint32_t>(size);
    bp.ext_ramdisk_image = static_cast<uint32_t>(addr >> 32);
  }
  bp.hdr = hdr;
  bp.acpi_rsdp_addr = info.rsdp_addr;

  const auto map = e820_map(mem);
  if (map.size() > kE820MaxEntriesZeroPage)
    return err("e820 map has {} entries; the zero page holds {}", map.size(),
               kE820MaxEntriesZeroPage);
  for (size_t i = 0; i < map.size(); ++i)
    bp.e820_table[i] = E820Entry{map[i].addr, map[i].size, map[i].type};
  bp.e820_entries = static_cast<uint8_t>(map.size());
  return bp;
}

Result<void> write_boot_params(GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info) {
  IGN_ASSIGN_OR_RETURN(BootParams bp, build_boot_params(mem, kernel, info));
  return mem.write_obj(kBootParamsAddr, bp);
}

}  // namespace ignition::x86_64
