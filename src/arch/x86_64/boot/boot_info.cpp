#include "arch/x86_64/boot/boot_info.hpp"

#include <vector>

#include "arch/x86_64/boot_params.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/pvh.hpp"

namespace ignition::x86_64 {

Result<void> write_cmdline(GuestMemory& mem, std::string_view cmdline, uint64_t max_len) {
  if (cmdline.find('\0') != std::string_view::npos)
    return err("kernel command line contains a NUL byte");
  if (cmdline.size() + 1 > kCmdlineMaxSize)
    return err("kernel command line is {} bytes; at most {} fit", cmdline.size(),
               kCmdlineMaxSize - 1);
  if (cmdline.size() > max_len)
    return err("kernel command line is {} bytes; the kernel accepts at most {}", cmdline.size(),
               max_len);
  std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
  bytes.push_back(0);
  return mem.write(kCmdlineAddr, bytes);
}

Result<void> write_boot_info(GuestMemory& mem, const LoadedKernel& kernel, const BootInfo& info) {
  IGN_TRY(write_cmdline(mem, info.cmdline, kernel.cmdline_max));
  if (kernel.protocol == BootProtocol::Pvh) return write_pvh_start_info(mem, info);
  return write_boot_params(mem, kernel, info);
}

}  // namespace ignition::x86_64
