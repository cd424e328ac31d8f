#include "arch/x86_64/initrd.hpp"

#include <algorithm>

#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t k4GiB = 1ull << 32;
}  // namespace

Result<uint64_t> initrd_address(const GuestMemory& mem, const LoadedKernel& kernel, uint64_t size) {
  if (size == 0) return err("initrd is empty");
  // ramdisk_image is a 32-bit field, and the MMIO gap holds no RAM anyway.
  uint64_t limit = std::min(k4GiB, kMmioGapStart);
  if (kernel.initrd_addr_max < limit - 1) limit = kernel.initrd_addr_max + 1;
  const uint64_t floor =
      std::max(kHighMemStart, (kernel.load_end + kPageSize - 1) & ~(kPageSize - 1));
  uint64_t best = 0;
  bool found = false;
  for (const auto& r : mem.regions()) {
    const uint64_t top = std::min(r.gpa + r.size, limit);
    const uint64_t bottom = std::max(r.gpa, floor);
    if (top <= bottom || top - bottom < size) continue;
    const uint64_t addr = (top - size) & ~(kPageSize - 1);
    if (addr < bottom) continue;
    if (!found || addr > best) best = addr;
    found = true;
  }
  if (!found)
    return err(
        "initrd of {:#x} bytes does not fit in guest RAM between the kernel end {:#x} and {:#x}",
        size, floor, limit);
  return best;
}

Result<InitrdPlacement> load_initrd_from(GuestMemory& mem, const boot::ImageSource& initrd,
                                         const LoadedKernel& kernel) {
  IGN_ASSIGN_OR_RETURN(uint64_t addr, initrd_address(mem, kernel, initrd.size()));
  IGN_TRY(initrd.copy_to_guest(mem, addr, 0, initrd.size()));
  return InitrdPlacement{addr, initrd.size()};
}

Result<InitrdPlacement> load_initrd(GuestMemory& mem, const std::string& path,
                                    const LoadedKernel& kernel) {
  IGN_ASSIGN_OR_RETURN(boot::ImageSource image, boot::ImageSource::open(path));
  return load_initrd_from(mem, image, kernel);
}

Result<InitrdPlacement> load_initrd_bytes(GuestMemory& mem, std::span<const uint8_t> initrd,
                                          const LoadedKernel& kernel) {
  return load_initrd_from(mem, boot::ImageSource::from_bytes(initrd), kernel);
}

}  // namespace ignition::x86_64
