#include "arch/x86_64/kernel_loader.hpp"

#include "arch/x86_64/bzimage.hpp"
#include "arch/x86_64/elf.hpp"

namespace ignition::x86_64 {

const char* to_string(BootProtocol protocol) {
  return protocol == BootProtocol::Pvh ? "PVH" : "Linux 64-bit";
}

Result<LoadedKernel> load_kernel_from(GuestMemory& mem, const boot::ImageSource& image,
                                      bool prefer_pvh) {
  if (is_elf_image(image)) return load_elf_kernel(mem, image, prefer_pvh);
  if (is_bzimage(image)) return load_bzimage(mem, image);
  return err("{}: not a kernel image (ELF, bzImage or PVH ELF expected)", image.name());
}

Result<LoadedKernel> load_kernel(GuestMemory& mem, const std::string& path, bool prefer_pvh) {
  IGN_ASSIGN_OR_RETURN(boot::ImageSource image, boot::ImageSource::open(path));
  return load_kernel_from(mem, image, prefer_pvh);
}

Result<LoadedKernel> load_kernel_bytes(GuestMemory& mem, std::span<const uint8_t> image,
                                       bool prefer_pvh) {
  return load_kernel_from(mem, boot::ImageSource::from_bytes(image), prefer_pvh);
}

}  // namespace ignition::x86_64
