#include "arch/x86_64/pvh.hpp"

#include <vector>

#include "arch/x86_64/e820.hpp"

namespace ignition::x86_64 {

Result<void> write_pvh_start_info(GuestMemory& mem, const BootInfo& info) {
  const auto map = e820_map(mem);
  constexpr uint64_t kMaxEntries = (kPvhInfoEnd - kPvhMemmapAddr) / sizeof(HvmMemmapTableEntry);
  if (map.size() > kMaxEntries)
    return err("PVH memory map has {} entries; room for {}", map.size(), kMaxEntries);

  HvmStartInfo si{};
  si.magic = kHvmStartMagic;
  si.version = kHvmStartVersion;
  si.cmdline_paddr = kCmdlineAddr;
  si.rsdp_paddr = info.rsdp_addr;
  si.memmap_paddr = kPvhMemmapAddr;
  si.memmap_entries = static_cast<uint32_t>(map.size());

  // Stale entries from an earlier boot must not survive a reset.
  IGN_TRY(mem.fill(kPvhStartInfoAddr, 0, kPvhInfoEnd - kPvhStartInfoAddr));
  if (info.initrd) {
    if (info.initrd->size == 0) return err("initrd is empty");
    si.nr_modules = 1;
    si.modlist_paddr = kPvhModlistAddr;
    IGN_TRY(mem.write_obj(kPvhModlistAddr,
                          HvmModlistEntry{info.initrd->addr, info.initrd->size, 0, 0}));
  }
  std::vector<HvmMemmapTableEntry> entries;
  for (const E820Range& r : map) entries.push_back({r.addr, r.size, r.type, 0});
  IGN_TRY(mem.write(kPvhMemmapAddr, {reinterpret_cast<const uint8_t*>(entries.data()),
                                     entries.size() * sizeof(HvmMemmapTableEntry)}));
  return mem.write_obj(kPvhStartInfoAddr, si);
}

}  // namespace ignition::x86_64
