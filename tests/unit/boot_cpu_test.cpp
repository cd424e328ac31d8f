// Boot vCPU state: GDT/IDT and identity page tables in guest memory, the register state
// for each boot protocol, and (when /dev/kvm is there) a vCPU really entering tiny
// 64-bit and PVH 32-bit entry stubs with that state.
#include "arch/x86_64/boot_cpu.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "arch/x86_64/boot/boot_info.hpp"
#include "arch/x86_64/layout.hpp"
#include "arch/x86_64/pvh.hpp"
#include "hv/hypervisor.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::x86_64 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

GuestMemory make_mem(uint64_t bytes) {
  std::vector<GuestMemory::Range> ranges;
  for (const auto& r : ram_ranges(bytes)) ranges.push_back({r.gpa, r.size});
  auto mem = GuestMemory::create_anonymous(ranges);
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

uint64_t u64_at(const GuestMemory& mem, uint64_t gpa) {
  auto v = mem.read_obj<uint64_t>(gpa);
  EXPECT_TRUE(v.ok()) << v.error().message;
  return v.ok() ? *v : 0;
}

// Walks the boot page tables as the MMU would for a 2 MiB mapping; nullopt if unmapped.
std::optional<uint64_t> walk(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
  const uint64_t addr_mask = 0x000ffffffffff000ull;
  uint64_t pml4e = u64_at(mem, cr3 + ((va >> 39) & 511) * 8);
  if (!(pml4e & kPtePresent)) return std::nullopt;
  uint64_t pdpte = u64_at(mem, (pml4e & addr_mask) + ((va >> 30) & 511) * 8);
  if (!(pdpte & kPtePresent)) return std::nullopt;
  uint64_t pde = u64_at(mem, (pdpte & addr_mask) + ((va >> 21) & 511) * 8);
  if (!(pde & kPtePresent) || !(pde & kPteHuge)) return std::nullopt;
  return (pde & 0x000fffffffe00000ull) + (va & 0x1fffff);
}

TEST(GdtTest, EntriesMatchTheLinuxBootGdt) {
  // The descriptors Firecracker writes (its regs.rs tests check the same values).
  auto linux64 = boot_gdt(BootProtocol::Linux64);
  EXPECT_EQ(linux64[0], 0u);
  EXPECT_EQ(linux64[1], 0x00af9b000000ffffull);
  EXPECT_EQ(linux64[2], 0x00cf93000000ffffull);
  EXPECT_EQ(linux64[3], 0x008f8b000000ffffull);
  auto pvh = boot_gdt(BootProtocol::Pvh);
  EXPECT_EQ(pvh[1], 0x00cf9b000000ffffull);
  EXPECT_EQ(pvh[2], 0x00cf93000000ffffull);
  EXPECT_EQ(pvh[3], 0x00008b0000000067ull);
  EXPECT_EQ(gdt_entry(0x4093, 0x12345678, 0xabcde), 0x124a93345678bcdeull);
}

TEST(GdtTest, SegmentsDecodeFromDescriptors) {
  auto cs = segment_from_gdt(gdt_entry(0xa09b, 0x100000, 0xfffff), 8);
  EXPECT_EQ(cs.base, 0x100000u);
  EXPECT_EQ(cs.limit, 0xffffffffu);  // 4 KiB granular: scaled to bytes
  EXPECT_EQ(cs.selector, 8);
  EXPECT_EQ(cs.type, 0xb);
  EXPECT_EQ(cs.present, 1);
  EXPECT_EQ(cs.dpl, 0);
  EXPECT_EQ(cs.s, 1);
  EXPECT_EQ(cs.l, 1);
  EXPECT_EQ(cs.db, 0);
  EXPECT_EQ(cs.g, 1);
  EXPECT_EQ(cs.avl, 0);
  EXPECT_EQ(cs.unusable, 0);
  auto tss = segment_from_gdt(gdt_entry(0x008b, 0, 0x67), 0x18);
  EXPECT_EQ(tss.limit, 0x67u);  // byte granular: as is
  EXPECT_EQ(tss.g, 0);
  EXPECT_EQ(tss.s, 0);
  auto empty = segment_from_gdt(0, 0);
  EXPECT_EQ(empty.unusable, 1);
  auto user = segment_from_gdt(gdt_entry(0xf0f3, 0xff000000, 0), 0x23);
  EXPECT_EQ(user.dpl, 3);
  EXPECT_EQ(user.avl, 1);
  EXPECT_EQ(user.base, 0xff000000u);
}

TEST(BootTablesTest, GdtIdtAndIdentityMapInMemory) {
  auto mem = make_mem(128 * kMiB);
  // Stale bytes everywhere the tables go: all of them must be rewritten.
  ASSERT_TRUE(mem.fill(kGdtAddr, 0xff, 0x40).ok());
  ASSERT_TRUE(mem.fill(kPml4Addr, 0xff, kPdAddr + kPdCount * 0x1000 - kPml4Addr).ok());
  ASSERT_TRUE(write_boot_tables(mem, BootProtocol::Linux64).ok());

  auto gdt = boot_gdt(BootProtocol::Linux64);
  for (size_t i = 0; i < gdt.size(); ++i) EXPECT_EQ(u64_at(mem, kGdtAddr + i * 8), gdt[i]) << i;
  EXPECT_EQ(u64_at(mem, kIdtAddr), 0u);

  EXPECT_EQ(u64_at(mem, kPml4Addr), kPdptAddr | 3);
  for (uint64_t i = 1; i < 512; ++i) EXPECT_EQ(u64_at(mem, kPml4Addr + i * 8), 0u) << i;
  for (uint64_t i = 0; i < 512; ++i)
    EXPECT_EQ(u64_at(mem, kPdptAddr + i * 8), i < kPdCount ? (kPdAddr + i * 0x1000) | 3 : 0u) << i;
  // Every 2 MiB page: present, writable, large, supervisor-only, identity.
  for (uint64_t i = 0; i < kPdCount * 512; ++i) {
    uint64_t pde = u64_at(mem, kPdAddr + i * 8);
    EXPECT_EQ(pde & 0xfff, 0x83u) << i;
    EXPECT_EQ(pde & ~0xfffull, i << 21) << i;
  }
  for (uint64_t va :
       {0ull, 0x1234567ull, 0x7fff000ull, 0xcfffffffull, 0xfee00000ull, 0xffffffffull})
    EXPECT_EQ(walk(mem, kPml4Addr, va), va) << std::hex << va;
  EXPECT_EQ(walk(mem, kPml4Addr, 4 * kGiB), std::nullopt);
}

TEST(BootTablesTest, FailsWithoutLowMemory) {
  auto mem = GuestMemory::create_anonymous({{kHighMemStart, 16 * kMiB}});
  ASSERT_TRUE(mem.ok());
  EXPECT_FALSE(setup_boot_cpu(*mem, BootProtocol::Linux64, 0x1000000).ok());
}

TEST(BootCpuTest, Linux64State) {
  auto mem = make_mem(128 * kMiB);
  auto st = setup_boot_cpu(mem, BootProtocol::Linux64, 0x1000000);
  ASSERT_TRUE(st.ok()) << st.error().message;
  const hv::Regs& r = st->regs;
  EXPECT_EQ(r.rip, 0x1000000u);
  EXPECT_EQ(r.rsi, kBootParamsAddr);
  EXPECT_EQ(r.rsp, kBootStackTop);
  EXPECT_EQ(r.rbp, kBootStackTop);
  EXPECT_EQ(r.rflags, 2u);
  EXPECT_EQ(r.rax | r.rbx | r.rcx | r.rdx | r.rdi | r.r8 | r.r15, 0u);

  const hv::Sregs& s = st->sregs;
  EXPECT_EQ(s.cs.selector, 0x8);
  EXPECT_EQ(s.cs.l, 1);
  EXPECT_EQ(s.cs.db, 0);
  EXPECT_EQ(s.cs.type, 0xb);
  for (const hv::Segment* seg : {&s.ds, &s.es, &s.fs, &s.gs, &s.ss}) {
    EXPECT_EQ(seg->selector, 0x10);
    EXPECT_EQ(seg->type, 0x3);
    EXPECT_EQ(seg->present, 1);
  }
  EXPECT_EQ(s.tr.selector, 0x18);
  EXPECT_EQ(s.tr.type, 0xb);  // busy TSS, as a loaded TR must be
  EXPECT_EQ(s.tr.s, 0);
  EXPECT_EQ(s.gdt.base, kGdtAddr);
  EXPECT_EQ(s.gdt.limit, 31);
  EXPECT_EQ(s.idt.base, kIdtAddr);
  EXPECT_EQ(s.idt.limit, 7);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et | kCr0Pg);
  EXPECT_EQ(s.cr3, kPml4Addr);
  EXPECT_EQ(s.cr4, kCr4Pae);
  EXPECT_EQ(s.efer, kEferLme | kEferLma);
}

TEST(BootCpuTest, PvhState) {
  auto mem = make_mem(128 * kMiB);
  auto st = setup_boot_cpu(mem, BootProtocol::Pvh, 0x1000040);
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_EQ(st->regs.rip, 0x1000040u);
  EXPECT_EQ(st->regs.rbx, kPvhStartInfoAddr);
  EXPECT_EQ(st->regs.rflags, 2u);
  EXPECT_EQ(st->regs.rsi, 0u);
  const hv::Sregs& s = st->sregs;
  EXPECT_EQ(s.cs.selector, 0x8);
  EXPECT_EQ(s.cs.db, 1);  // 32-bit code
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.base, 0u);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_EQ(s.ds.db, 1);
  EXPECT_EQ(s.ss.limit, 0xffffffffu);
  EXPECT_EQ(s.tr.limit, 0x67u);
  EXPECT_EQ(s.tr.type, 0xb);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et);
  EXPECT_EQ(s.cr4, 0u);
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(u64_at(mem, kGdtAddr + 8), boot_gdt(BootProtocol::Pvh)[1]);
}

TEST(BootCpuTest, ApplyKeepsWhatItDoesNotOwn) {
  hv::Sregs s{};
  s.apic_base = 0xfee00900;
  s.cr8 = 5;
  s.cr2 = 0x1234;
  s.interrupt_bitmap[1] = 0x80;
  s.ldt.selector = 0x28;
  s.cr0 = 0x60000010;  // reset value: CD|NW|ET
  apply_boot_sregs(s, BootProtocol::Linux64);
  EXPECT_EQ(s.apic_base, 0xfee00900u);
  EXPECT_EQ(s.cr8, 5u);
  EXPECT_EQ(s.cr2, 0x1234u);
  EXPECT_EQ(s.interrupt_bitmap[1], 0x80u);
  EXPECT_EQ(s.ldt.selector, 0x28);
  EXPECT_EQ(s.cr0, kCr0Pe | kCr0Et | kCr0Pg);  // caches on, whatever reset left
  apply_boot_sregs(s, BootProtocol::Pvh);      // and back: nothing of long mode is left
  EXPECT_EQ(s.efer, 0u);
  EXPECT_EQ(s.cr3, 0u);
  EXPECT_EQ(s.cr0 & kCr0Pg, 0u);
}

TEST(BootCpuTest, FpuIsPowerOnState) {
  auto f = boot_fpu();
  EXPECT_EQ(f.fcw, 0x37f);
  EXPECT_EQ(f.mxcsr, 0x1f80u);
  EXPECT_EQ(f.fsw, 0);
}

// ---- on a real vCPU ----

constexpr uint16_t kReportPort = 0x10;
constexpr uint64_t kEntry = 0x100000;
constexpr uint64_t kTopPage = 128 * kMiB - 0x1000;  // read through the identity map
constexpr uint32_t kMarker = 0xc0ffee42;

struct Guest {
  GuestMemory mem;
  std::unique_ptr<hv::Hypervisor> hv;
  std::unique_ptr<hv::Vm> vm;
  std::unique_ptr<hv::Vcpu> vcpu;
};

// A VM with 128 MiB, `code` at kEntry, boot info and the boot vCPU set up for `protocol`.
// Empty if this machine has no usable KVM.
std::optional<Guest> boot_guest(BootProtocol protocol, const std::vector<uint8_t>& code) {
  auto hyp = hv::open_hypervisor();
  if (!hyp.ok()) return std::nullopt;
  Guest g{make_mem(128 * kMiB), std::move(*hyp), nullptr, nullptr};
  auto vm = g.hv->create_vm();
  EXPECT_TRUE(vm.ok()) << vm.error().message;
  if (!vm.ok()) return std::nullopt;
  g.vm = std::move(*vm);
  uint32_t slot = 0;
  for (const auto& r : g.mem.regions())
    EXPECT_TRUE(g.vm->map_memory(slot++, r.gpa, r.size, r.host, false).ok());
  EXPECT_TRUE(g.mem.write(kEntry, code).ok());
  EXPECT_TRUE(g.mem.write_obj(kTopPage, kMarker).ok());

  LoadedKernel k{};
  k.protocol = protocol;
  k.entry = kEntry;
  k.load_start = kEntry;
  k.load_end = kEntry + 0x1000;
  k.format = protocol == BootProtocol::Pvh ? "pvh" : "elf";
  k.cmdline_max = 100;
  auto info = write_boot_info(g.mem, k, {"console=ttyS0", std::nullopt, kRsdpAddr});
  EXPECT_TRUE(info.ok()) << info.error().message;

  auto vcpu = g.vm->create_vcpu(0);
  EXPECT_TRUE(vcpu.ok()) << vcpu.error().message;
  if (!vcpu.ok()) return std::nullopt;
  g.vcpu = std::move(*vcpu);
  // Some KVMs refuse EFER.LME unless the guest CPUID has LM; this one does not care, so
  // a failure here is left for set_sregs to report if it matters.
  const std::vector<hv::CpuidEntry> cpuid = {{0x80000000, 0, 0, 0x80000001, 0, 0, 0},
                                             {0x80000001, 0, 0, 0, 0, 0, 1u << 29}};
  (void)g.vcpu->set_cpuid(cpuid);

  auto st = setup_boot_cpu(g.mem, protocol, kEntry);
  EXPECT_TRUE(st.ok()) << st.error().message;
  auto sregs = g.vcpu->get_sregs();
  EXPECT_TRUE(sregs.ok());
  apply_boot_sregs(*sregs, protocol);
  auto set_s = g.vcpu->set_sregs(*sregs);
  EXPECT_TRUE(set_s.ok()) << set_s.error().message;
  EXPECT_TRUE(g.vcpu->set_regs(st->regs).ok());
  EXPECT_TRUE(g.vcpu->set_fpu(boot_fpu()).ok());
  return g;
}

// Runs to HLT, collecting the 32-bit values the stub writes to kReportPort.
std::vector<uint32_t> run_to_hlt(hv::Vcpu& vcpu) {
  std::vector<uint32_t> out;
  for (int i = 0; i < 32; ++i) {
    auto exit = vcpu.run();
    EXPECT_TRUE(exit.ok()) << exit.error().message;
    if (!exit.ok()) break;
    if (auto* io = std::get_if<hv::IoOut>(&*exit)) {
      EXPECT_EQ(io->port, kReportPort);
      EXPECT_EQ(io->data.size(), 4u);
      uint32_t v = 0;
      std::memcpy(&v, io->data.data(), std::min<size_t>(4, io->data.size()));
      out.push_back(v);
      continue;
    }
    if (std::holds_alternative<hv::Halted>(*exit)) return out;
    if (auto* fatal = std::get_if<hv::Fatal>(&*exit)) {
      ADD_FAILURE() << "guest failed: " << fatal->what;
      return out;
    }
    ADD_FAILURE() << "unexpected exit " << exit->index();
    return out;
  }
  ADD_FAILURE() << "guest did not halt";
  return out;
}

TEST(BootCpuKvmTest, Linux64EntryRunsInLongModeWithTheZeroPageInRsi) {
  const std::vector<uint8_t> code = {
      0x8b, 0x86, 0x02, 0x02, 0x00, 0x00,  // mov eax, [rsi + 0x202]   ("HdrS")
      0x66, 0xba, 0x10, 0x00,              // mov dx, kReportPort
      0xef,                                // out dx, eax
      0x48, 0xb8, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  // mov rax, imm64
      0x48, 0xc1, 0xe8, 0x20,                                      // shr rax, 32
      0xef,                                                        // out dx, eax
      0x8b, 0x04, 0x25, 0x00, 0xf0, 0xff, 0x07,                    // mov eax, [kTopPage]
      0xef,                                                        // out dx, eax
      0x50,        // push rax (the boot stack works)
      0x5b,        // pop rbx
      0x89, 0xd8,  // mov eax, ebx
      0xef,        // out dx, eax
      0x89, 0xe0,  // mov eax, esp
      0xef,        // out dx, eax
      0xf4,        // hlt
  };
  auto g = boot_guest(BootProtocol::Linux64, code);
  if (!g) GTEST_SKIP() << "no usable KVM here";
  auto out = run_to_hlt(*g->vcpu);
  const std::vector<uint32_t> expected = {0x53726448, 0x11223344, kMarker, kMarker,
                                          static_cast<uint32_t>(kBootStackTop)};
  EXPECT_EQ(out, expected);
}

TEST(BootCpuKvmTest, PvhEntryRunsIn32BitProtectedModeWithStartInfoInEbx) {
  const std::vector<uint8_t> code = {
      0x8b, 0x03,                    // mov eax, [ebx]           (start_info magic)
      0x66, 0xba, 0x10, 0x00,        // mov dx, kReportPort
      0xef,                          // out dx, eax
      0xb8, 0x05, 0x00, 0x00, 0x00,  // mov eax, 5
      0x48,                          // dec eax: only in 32-bit mode (a REX prefix in 64-bit)
      0xef,                          // out dx, eax
      0x0f, 0x20, 0xc0,              // mov eax, cr0
      0xef,                          // out dx, eax
      0xa1, 0x00, 0xf0, 0xff, 0x07,  // mov eax, [kTopPage]      (flat 4 GiB segments)
      0xef,                          // out dx, eax
      0xf4,                          // hlt
  };
  auto g = boot_guest(BootProtocol::Pvh, code);
  if (!g) GTEST_SKIP() << "no usable KVM here";
  auto out = run_to_hlt(*g->vcpu);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], kHvmStartMagic);
  EXPECT_EQ(out[1], 4u);
  EXPECT_EQ(out[2] & kCr0Pe, kCr0Pe);
  EXPECT_EQ(out[2] & kCr0Pg, 0u);
  EXPECT_EQ(out[3], kMarker);
}

}  // namespace
}  // namespace ignition::x86_64
