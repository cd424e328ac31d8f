#include "arch/x86_64/boot_cpu.hpp"

#include <vector>

#include "arch/x86_64/layout.hpp"

namespace ignition::x86_64 {

namespace {
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t k2MiB = 2ull << 20;
constexpr uint64_t kEntriesPerTable = 512;
constexpr uint64_t kIdtEntrySize = 8;

static_assert(kPdCount <= kEntriesPerTable);
static_assert(kPml4Addr + kPageSize <= kPdptAddr && kPdptAddr + kPageSize <= kPdAddr);
static_assert(kGdtAddr + kBootGdtEntries * 8 <= kIdtAddr);
}  // namespace

uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit) {
  return ((uint64_t{base} & 0xff000000) << 32) | ((uint64_t{flags} & 0xf0ff) << 40) |
         ((uint64_t{limit} & 0x000f0000) << 32) | ((uint64_t{base} & 0x00ffffff) << 16) |
         (uint64_t{limit} & 0x0000ffff);
}

hv::Segment segment_from_gdt(uint64_t entry, uint16_t selector) {
  hv::Segment s{};
  s.base = ((entry >> 32) & 0xff000000) | ((entry >> 16) & 0x00ffffff);
  uint32_t limit = static_cast<uint32_t>(((entry >> 32) & 0x000f0000) | (entry & 0xffff));
  s.g = (entry >> 55) & 1;
  // The hypervisor wants the byte limit, not the 20-bit field (needed for PVH's 4 GiB
  // 32-bit segments; long mode ignores limits).
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.selector = selector;
  s.type = (entry >> 40) & 0xf;
  s.s = (entry >> 44) & 1;
  s.dpl = (entry >> 45) & 3;
  s.present = (entry >> 47) & 1;
  s.avl = (entry >> 52) & 1;
  s.l = (entry >> 53) & 1;
  s.db = (entry >> 54) & 1;
  s.unusable = s.present ? 0 : 1;
  return s;
}

std::array<uint64_t, kBootGdtEntries> boot_gdt(BootProtocol protocol) {
  if (protocol == BootProtocol::Pvh)
    return {gdt_entry(0, 0, 0), gdt_entry(0xc09b, 0, 0xfffff), gdt_entry(0xc093, 0, 0xfffff),
            gdt_entry(0x008b, 0, 0x67)};
  return {gdt_entry(0, 0, 0), gdt_entry(0xa09b, 0, 0xfffff), gdt_entry(0xc093, 0, 0xfffff),
          gdt_entry(0x808b, 0, 0xfffff)};
}

Result<void> write_boot_tables(GuestMemory& mem, BootProtocol protocol) {
  IGN_TRY(mem.write_obj(kGdtAddr, boot_gdt(protocol)));
  IGN_TRY(mem.write_obj(kIdtAddr, uint64_t{0}));

  std::vector<uint64_t> table(kEntriesPerTable, 0);
  auto write_table = [&](uint64_t gpa) {
    return mem.write(gpa, {reinterpret_cast<const uint8_t*>(table.data()), kPageSize});
  };
  table[0] = kPdptAddr | kPtePresent | kPteWritable;
  IGN_TRY(write_table(kPml4Addr));
  std::fill(table.begin(), table.end(), 0);
  for (uint64_t i = 0; i < kPdCount; ++i)
    table[i] = (kPdAddr + i * kPageSize) | kPtePresent | kPteWritable;
  IGN_TRY(write_table(kPdptAddr));
  for (uint64_t pd = 0; pd < kPdCount; ++pd) {
    for (uint64_t i = 0; i < kEntriesPerTable; ++i)
      table[i] = ((pd * kEntriesPerTable + i) * k2MiB) | kPtePresent | kPteWritable | kPteHuge;
    IGN_TRY(write_table(kPdAddr + pd * kPageSize));
  }
  return {};
}

void apply_boot_sregs(hv::Sregs& sregs, BootProtocol protocol) {
  const auto gdt = boot_gdt(protocol);
  const hv::Segment code = segment_from_gdt(gdt[1], kBootCodeSelector);
  const hv::Segment data = segment_from_gdt(gdt[2], kBootDataSelector);
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.tr = segment_from_gdt(gdt[3], kBootTssSelector);
  sregs.gdt = {kGdtAddr, static_cast<uint16_t>(kBootGdtEntries * 8 - 1)};
  sregs.idt = {kIdtAddr, static_cast<uint16_t>(kIdtEntrySize - 1)};
  if (protocol == BootProtocol::Pvh) {
    sregs.cr0 = kCr0Pe | kCr0Et;
    sregs.cr3 = 0;
    sregs.cr4 = 0;
    sregs.efer = 0;
  } else {
    sregs.cr0 = kCr0Pe | kCr0Et | kCr0Pg;
    sregs.cr3 = kPml4Addr;
    sregs.cr4 = kCr4Pae;
    sregs.efer = kEferLme | kEferLma;
  }
}

hv::Regs boot_regs(BootProtocol protocol, uint64_t entry) {
  hv::Regs r{};
  r.rip = entry;
  r.rflags = 0x2;  // bit 1 is reserved-one; IF clear
  if (protocol == BootProtocol::Pvh) {
    r.rbx = kPvhStartInfoAddr;
  } else {
    r.rsi = kBootParamsAddr;
    r.rsp = kBootStackTop;
    r.rbp = kBootStackTop;
  }
  return r;
}

hv::Fpu boot_fpu() {
  hv::Fpu f{};
  f.fcw = 0x37f;
  f.mxcsr = 0x1f80;
  return f;
}

Result<BootCpuState> setup_boot_cpu(GuestMemory& mem, BootProtocol protocol, uint64_t entry) {
  IGN_TRY(write_boot_tables(mem, protocol));
  BootCpuState st{boot_regs(protocol, entry), hv::Sregs{}};
  apply_boot_sregs(st.sregs, protocol);
  return st;
}

}  // namespace ignition::x86_64
