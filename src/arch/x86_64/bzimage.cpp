#include "arch/x86_64/bzimage.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "arch/x86_64/boot/guest_ram.hpp"
#include "arch/x86_64/boot_params.hpp"
#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {
constexpr uint64_t kSectorSize = 512;
constexpr uint64_t kEntry64Offset = 0x200;  // startup_64 relative to the load address
constexpr uint16_t kMinVersion = 0x0206;
constexpr uint16_t kXlfVersion = 0x020c;  // xloadflags appeared in 2.12
constexpr uint32_t kDefaultInitrdAddrMax = 0x37ffffff;
}  // namespace

bool is_bzimage(const boot::ImageSource& image) {
  auto magic = image.read_obj<uint32_t>(0x202);
  return magic.ok() && *magic == kSetupHeaderMagic;
}

Result<LoadedKernel> load_bzimage(GuestMemory& mem, const boot::ImageSource& image) {
  auto hdr_r = image.read_obj<SetupHeader>(kSetupHeaderOffset);
  if (!hdr_r.ok()) return err("bzImage setup header is truncated ({} bytes)", image.size());
  const SetupHeader hdr = *hdr_r;
  const uint16_t version = hdr.version;
  if (version < kMinVersion)
    return err("bzImage boot protocol {}.{:02} is too old (2.06 or newer required)", version >> 8,
               version & 0xff);
  if (!(hdr.loadflags & kLoadFlagLoadedHigh))
    return err("zImage kernels (not loaded high) are not supported");
  if (version < kXlfVersion || !(hdr.xloadflags & kXlfKernel64))
    return err("bzImage has no 64-bit entry point (XLF_KERNEL_64; boot protocol {}.{:02})",
               version >> 8, version & 0xff);

  const uint64_t setup_size = (uint64_t{hdr.setup_sects ? hdr.setup_sects : 4u} + 1) * kSectorSize;
  if (setup_size >= image.size())
    return err("bzImage is truncated: {:#x} bytes of setup but only {:#x} in the file", setup_size,
               image.size());
  const uint64_t payload = image.size() - setup_size;
  if (payload <= kEntry64Offset)
    return err("bzImage protected-mode kernel is only {:#x} bytes", payload);
  // syssize counts 16-byte paragraphs, rounded up: up to 15 bytes of slack.
  if (uint64_t{hdr.syssize} * 16 > payload + 15)
    return err("bzImage is truncated: syssize says {:#x} bytes of kernel, the file has {:#x}",
               uint64_t{hdr.syssize} * 16, payload);

  const uint64_t load = hdr.code32_start;
  if (load < kHighMemStart)
    return err("bzImage code32_start {:#x} is below {:#x}", load, kHighMemStart);
  // The decompressor moves itself to max(load, pref_address), aligned up to
  // kernel_alignment, and needs init_size bytes there: all of that must be RAM.
  const uint64_t pref_address = hdr.pref_address;  // copies: fmt and std::max take
  const uint64_t init_size = hdr.init_size;        // references, which packed fields forbid
  uint64_t run_at = std::max(load, pref_address);
  const uint64_t align = hdr.kernel_alignment;
  if (align != 0 && (align & (align - 1)) == 0 && run_at <= UINT64_MAX - align)
    run_at = (run_at + align - 1) & ~(align - 1);
  if (run_at > UINT64_MAX - init_size)
    return err("bzImage pref_address {:#x} + init_size {:#x} overflows", run_at, init_size);
  const uint64_t load_end = std::max(load + payload, run_at + init_size);
  if (!boot::ram_covers(mem, load, load_end - load))
    return err("bzImage needs guest RAM at [{:#x}, {:#x}) (load address, pref_address, init_size)",
               load, load_end);

  // The setup header ends at 0x202 + the jump offset in byte 0x201 (boot.rst, 64-bit
  // protocol); keep no more than the fields we know.
  const uint64_t hdr_end =
      std::min<uint64_t>(0x202 + (hdr.jump >> 8), kSetupHeaderOffset + sizeof(SetupHeader));
  if (hdr_end < kSetupHeaderOffset + offsetof(SetupHeader, hardware_subarch))
    return err("bzImage setup header ends at {:#x}, before the 2.12 fields", hdr_end);
  std::vector<uint8_t> header(hdr_end - kSetupHeaderOffset);
  IGN_TRY(image.read(kSetupHeaderOffset, header));

  LoadedKernel k{};
  k.protocol = BootProtocol::Linux64;
  k.format = "bzimage";
  k.entry = load + kEntry64Offset;
  k.load_start = load;
  k.load_end = load_end;
  k.setup_header = std::move(header);
  k.initrd_addr_max = hdr.initrd_addr_max ? hdr.initrd_addr_max : kDefaultInitrdAddrMax;
  k.cmdline_max = std::min<uint64_t>(hdr.cmdline_size, kCmdlineMaxSize - 1);
  IGN_TRY(image.copy_to_guest(mem, load, setup_size, payload));
  return k;
}

}  // namespace ignition::x86_64
