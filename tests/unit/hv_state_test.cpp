// Snapshot state through the hypervisor seam, on the real /dev/kvm: a guest saved mid-run
// and restored into a second VM (via the snapshot file) carries on exactly where it was;
// the PIC, PIT, IOAPIC and clock move across too.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <thread>
#include <vector>

#include "arch/x86_64/boot_cpu.hpp"
#include "arch/x86_64/cpuid.hpp"
#include "arch/x86_64/lapic.hpp"
#include "arch/x86_64/msrs.hpp"
#include "hv/hypervisor.hpp"
#include "memory/guest_memory.hpp"
#include "snapshot/hv_state_codec.hpp"
#include "snapshot/snapshot_file.hpp"

namespace ignition {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kMemSize = 16ull << 20;
constexpr uint64_t kEntry = 0x100000;
constexpr uint64_t kData = 0x200000;
constexpr uint16_t kPort = 0x10;

// A VM with one vCPU in 64-bit long mode at kEntry (ring 0, identity-mapped low 4 GiB),
// set up as the VMM does: in-kernel irqchip, guest CPUID, boot MSRs, LINT0/LINT1.
struct Machine {
  GuestMemory mem;
  std::unique_ptr<hv::Vm> vm;
  std::unique_ptr<hv::Vcpu> vcpu;
  std::vector<hv::CpuidEntry> cpuid;
};

GuestMemory new_memory() {
  auto mem = GuestMemory::create_anonymous({{0, kMemSize}});
  EXPECT_TRUE(mem.ok()) << mem.error().message;
  return std::move(mem).value();
}

// `image` (a whole copy of another guest's RAM) or `code` at kEntry with boot tables.
// Without `boot` the vCPU is left as KVM created it, for restore_state().
Machine make_machine(hv::Hypervisor& hyp, const std::vector<uint8_t>* image,
                     const std::vector<uint8_t>& code, bool boot) {
  Machine m{new_memory(), nullptr, nullptr, {}};
  if (image) {
    EXPECT_TRUE(m.mem.write(0, *image).ok());
  } else {
    EXPECT_TRUE(m.mem.write(kEntry, code).ok());
  }
  auto vm = hyp.create_vm();
  EXPECT_TRUE(vm.ok()) << vm.error().message;
  if (!vm.ok()) return m;
  m.vm = std::move(*vm);
  EXPECT_TRUE(m.vm->map_memory(0, 0, kMemSize, m.mem.regions()[0].host, false).ok());
  auto irqchip = m.vm->create_irqchip();
  EXPECT_TRUE(irqchip.ok()) << irqchip.error().message;
  auto vcpu = m.vm->create_vcpu(0);
  EXPECT_TRUE(vcpu.ok()) << vcpu.error().message;
  if (!vcpu.ok()) return m;
  m.vcpu = std::move(*vcpu);

  auto supported = hyp.supported_cpuid();
  EXPECT_TRUE(supported.ok());
  auto cpuid = x86_64::build_cpuid(*supported, {0, 1}, x86_64::CpuidMask{});
  EXPECT_TRUE(cpuid.ok()) << cpuid.error().message;
  m.cpuid = *cpuid;
  if (!boot) return m;

  EXPECT_TRUE(m.vcpu->set_cpuid(m.cpuid).ok());
  auto st = x86_64::setup_boot_cpu(m.mem, x86_64::BootProtocol::Linux64, kEntry);
  EXPECT_TRUE(st.ok()) << st.error().message;
  auto sregs = m.vcpu->get_sregs();
  EXPECT_TRUE(sregs.ok());
  x86_64::apply_boot_sregs(*sregs, x86_64::BootProtocol::Linux64);
  EXPECT_TRUE(m.vcpu->set_sregs(*sregs).ok());
  EXPECT_TRUE(m.vcpu->set_regs(st->regs).ok());
  EXPECT_TRUE(m.vcpu->set_fpu(x86_64::boot_fpu()).ok());
  auto msrs = m.vcpu->set_msrs(x86_64::boot_msrs());
  EXPECT_TRUE(msrs.ok()) << msrs.error().message;
  auto lapic = m.vcpu->get_lapic();
  EXPECT_TRUE(lapic.ok()) << lapic.error().message;
  x86_64::configure_lint(*lapic);
  EXPECT_TRUE(m.vcpu->set_lapic(*lapic).ok());
  return m;
}

std::vector<uint8_t> memory_image(const GuestMemory& mem) {
  std::vector<uint8_t> image(kMemSize);
  EXPECT_TRUE(mem.read(0, image).ok());
  return image;
}

struct Out {
  uint16_t port;
  uint32_t value;
  bool operator==(const Out&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Out& o) {
  return os << "out(" << std::hex << o.port << ", " << o.value << ")";
}

// Runs to the next port write; nullopt (and a test failure) on anything else.
std::optional<Out> next_out(hv::Vcpu& vcpu) {
  for (int i = 0; i < 8; ++i) {
    auto exit = vcpu.run();
    if (!exit.ok()) {
      ADD_FAILURE() << exit.error().message;
      return std::nullopt;
    }
    if (std::holds_alternative<hv::Interrupted>(*exit)) continue;
    if (auto* io = std::get_if<hv::IoOut>(&*exit)) {
      uint32_t v = 0;
      std::memcpy(&v, io->data.data(), std::min<size_t>(4, io->data.size()));
      return Out{io->port, v};
    }
    if (auto* fatal = std::get_if<hv::Fatal>(&*exit)) {
      ADD_FAILURE() << "guest failed: " << fatal->what;
    } else {
      ADD_FAILURE() << "unexpected exit " << exit->index();
    }
    return std::nullopt;
  }
  ADD_FAILURE() << "no port write";
  return std::nullopt;
}

std::vector<Out> outs(hv::Vcpu& vcpu, int n) {
  std::vector<Out> out;
  for (int i = 0; i < n; ++i) {
    auto o = next_out(vcpu);
    if (!o) break;
    out.push_back(*o);
  }
  return out;
}

// The counter guest: RBX counts iterations (in a register only), the qword at kData+8 grows
// by 3 each time (in memory only); both are reported on ports 0x10 and 0x11.
const std::vector<uint8_t> kCounterGuest = {
    0x48, 0xff, 0xc3,                                      // loop: inc rbx
    0x48, 0x89, 0x1c, 0x25, 0x00, 0x00, 0x20, 0x00,        // mov [kData], rbx
    0x48, 0x83, 0x04, 0x25, 0x08, 0x00, 0x20, 0x00, 0x03,  // add qword [kData+8], 3
    0x89, 0xd8,                                            // mov eax, ebx
    0xe7, 0x10,                                            // out 0x10, eax
    0x48, 0x8b, 0x04, 0x25, 0x08, 0x00, 0x20, 0x00,        // mov rax, [kData+8]
    0xe7, 0x11,                                            // out 0x11, eax
    0xeb, 0xdc,                                            // jmp loop
};

std::vector<Out> counter_outs(uint32_t first_count, uint32_t first_mem, int iterations) {
  std::vector<Out> out;
  for (int i = 0; i < iterations; ++i) {
    out.push_back({0x10, first_count + static_cast<uint32_t>(i)});
    out.push_back({0x11, first_mem + 3 * static_cast<uint32_t>(i)});
  }
  return out;
}

std::optional<uint64_t> msr_value(const std::vector<hv::Msr>& msrs, uint32_t index) {
  for (const auto& m : msrs) {
    if (m.index == index) return m.value;
  }
  return std::nullopt;
}

class HvStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hyp = hv::open_hypervisor();
    if (!hyp.ok()) GTEST_SKIP() << "no usable KVM here: " << hyp.error().message;
    hyp_ = std::move(*hyp);
  }
  std::vector<uint32_t> msr_list(const std::vector<hv::CpuidEntry>& cpuid) {
    auto kvm_list = hyp_->msr_index_list();
    EXPECT_TRUE(kvm_list.ok());
    return x86_64::snapshot_msr_list(*kvm_list, cpuid);
  }
  std::unique_ptr<hv::Hypervisor> hyp_;
};

TEST_F(HvStateTest, GuestContinuesExactlyInASecondVm) {
  Machine a = make_machine(*hyp_, nullptr, kCounterGuest, true);
  ASSERT_TRUE(a.vcpu);
  auto regs = a.vcpu->get_regs();
  ASSERT_TRUE(regs.ok());
  regs->rbx = 1000;
  ASSERT_TRUE(a.vcpu->set_regs(*regs).ok());
  ASSERT_EQ(outs(*a.vcpu, 10), counter_outs(1001, 3, 5));

  // State the guest does not touch, changed through the seam, must move across too. XMM
  // registers go in through the XSAVE area with XSTATE_BV.SSE set: KVM_SET_FPU leaves that
  // bit alone, so on an XSAVE host its XMM values count as "initial" (zero).
  auto xsave = a.vcpu->get_xsave();
  ASSERT_TRUE(xsave.ok()) << xsave.error().message;
  constexpr size_t kXmmOffset = 160, kXstateBvOffset = 512;
  std::array<std::array<uint8_t, 16>, 16> xmm;
  for (size_t i = 0; i < 16; ++i) xmm[i].fill(static_cast<uint8_t>(0x40 + i));
  std::memcpy(xsave->data() + kXmmOffset, xmm.data(), sizeof(xmm));
  xsave->at(kXstateBvOffset) |= 0x3;  // x87 and SSE state present
  auto set_xsave = a.vcpu->set_xsave(*xsave);
  ASSERT_TRUE(set_xsave.ok()) << set_xsave.error().message;
  hv::DebugRegs dr{{0x1000, 0x2000, 0x3000, 0x4000}, 0xffff0ff0, 0x400, 0};
  ASSERT_TRUE(a.vcpu->set_debug_regs(dr).ok());
  const hv::Msr kernel_gs{0xc0000102, 0xffff888012345000};
  ASSERT_TRUE(a.vcpu->set_msrs(std::span(&kernel_gs, 1)).ok());
  auto lapic = a.vcpu->get_lapic();
  ASSERT_TRUE(lapic.ok());
  lapic->regs[0x80] = 0x20;  // TPR
  ASSERT_TRUE(a.vcpu->set_lapic(*lapic).ok());

  const auto msrs = msr_list(a.cpuid);
  auto saved = a.vcpu->save_state(msrs);
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved->regs.rbx, 1005u);
  EXPECT_GE(saved->xsave.size(), 4096u);
  EXPECT_EQ(saved->events.size(), 64u);
  EXPECT_EQ(saved->msrs.size(), msrs.size());
  EXPECT_EQ(msr_value(saved->msrs, 0xc0000102), kernel_gs.value);
  EXPECT_TRUE(saved->tsc_khz.has_value());
  EXPECT_FALSE(saved->cpuid.empty());
  auto vm_saved = a.vm->save_state();
  ASSERT_TRUE(vm_saved.ok()) << vm_saved.error().message;

  // Through the snapshot file, as a real restore would go.
  snapshot::SnapshotWriter w(std::string(hyp_->state_tag()));
  ASSERT_TRUE(w.add_section("vcpu/0", snapshot::encode_vcpu_state(*saved)).ok());
  ASSERT_TRUE(w.add_section("vm", snapshot::encode_vm_state(*vm_saved)).ok());
  const auto path =
      std::filesystem::temp_directory_path() / ("ign-hv-state-" + std::to_string(::getpid()));
  ASSERT_TRUE(w.write(path.string()).ok());
  auto file = snapshot::SnapshotReader::open(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(file.ok()) << file.error().message;
  ASSERT_TRUE(file->expect_tag(hyp_->state_tag()).ok());
  auto vcpu_state = snapshot::decode_vcpu_state(*file->section("vcpu/0"));
  ASSERT_TRUE(vcpu_state.ok()) << vcpu_state.error().message;
  auto vm_state = snapshot::decode_vm_state(*file->section("vm"));
  ASSERT_TRUE(vm_state.ok()) << vm_state.error().message;

  const auto image = memory_image(a.mem);
  Machine b = make_machine(*hyp_, &image, {}, false);
  ASSERT_TRUE(b.vcpu);
  auto restored = b.vcpu->restore_state(*vcpu_state);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  auto vm_restored = b.vm->restore_state(*vm_state);
  ASSERT_TRUE(vm_restored.ok()) << vm_restored.error().message;

  // Read back before running: the second vCPU holds what the first had.
  auto again = b.vcpu->save_state(msrs);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(std::memcmp(&again->regs, &saved->regs, sizeof(hv::Regs)), 0);
  EXPECT_EQ(again->sregs.cr0, saved->sregs.cr0);
  EXPECT_EQ(again->sregs.cr3, saved->sregs.cr3);
  EXPECT_EQ(again->sregs.cr4, saved->sregs.cr4);
  EXPECT_EQ(again->sregs.efer, saved->sregs.efer);
  EXPECT_EQ(again->sregs.apic_base, saved->sregs.apic_base);
  EXPECT_EQ(again->sregs.cs.l, 1);
  EXPECT_EQ(again->sregs.gdt.base, saved->sregs.gdt.base);
  EXPECT_EQ(again->mp_state, saved->mp_state);
  EXPECT_EQ(again->xsave, saved->xsave);
  auto b_fpu = b.vcpu->get_fpu();
  ASSERT_TRUE(b_fpu.ok());
  EXPECT_EQ(b_fpu->xmm, xmm);
  ASSERT_EQ(again->xcrs.size(), saved->xcrs.size());
  for (size_t i = 0; i < again->xcrs.size(); ++i)
    EXPECT_EQ(again->xcrs[i].value, saved->xcrs[i].value);
  EXPECT_EQ(again->debug_regs.db, dr.db);
  EXPECT_EQ(again->debug_regs.dr7, saved->debug_regs.dr7);
  EXPECT_EQ(again->lapic.regs[0x80], 0x20);
  EXPECT_EQ(again->events, saved->events);
  EXPECT_EQ(again->cpuid.size(), saved->cpuid.size());
  ASSERT_EQ(again->msrs.size(), saved->msrs.size());
  for (size_t i = 0; i < again->msrs.size(); ++i) {
    const auto& m = again->msrs[i];
    EXPECT_EQ(m.index, saved->msrs[i].index);
    if (m.index == x86_64::msr::kTsc) {
      EXPECT_GE(m.value, saved->msrs[i].value) << "the guest TSC goes on from the saved value";
    } else if (m.index != x86_64::msr::kTscDeadline) {
      EXPECT_EQ(m.value, saved->msrs[i].value) << std::hex << m.index;
    }
  }

  // Both VMs go on from the same point, with RBX from the registers and the memory counter
  // from the copied RAM.
  EXPECT_EQ(outs(*b.vcpu, 6), counter_outs(1006, 18, 3));
  EXPECT_EQ(outs(*a.vcpu, 6), counter_outs(1006, 18, 3));
}

// Rollback: the same vCPU and memory are put back to a saved point and replay from there.
TEST_F(HvStateTest, GuestRollsBackInPlace) {
  Machine a = make_machine(*hyp_, nullptr, kCounterGuest, true);
  ASSERT_TRUE(a.vcpu);
  ASSERT_EQ(outs(*a.vcpu, 4), counter_outs(1, 3, 2));
  auto saved = a.vcpu->save_state(msr_list(a.cpuid));
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  const auto image = memory_image(a.mem);

  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(outs(*a.vcpu, 6), counter_outs(3, 9, 3)) << round;
    ASSERT_TRUE(a.mem.write(0, image).ok());
    const auto start = std::chrono::steady_clock::now();
    auto r = a.vcpu->restore_state(*saved);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_TRUE(r.ok()) << r.error().message;
    RecordProperty(
        "restore_state_us",
        static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  }
  EXPECT_EQ(outs(*a.vcpu, 6), counter_outs(3, 9, 3));
}

// A snapshot taken at an IN exit: the value the VMM supplied must reach the guest before
// the state is read, or the restored guest would redo or lose the instruction.
TEST_F(HvStateTest, SaveCompletesAPendingPortRead) {
  const std::vector<uint8_t> code = {
      0xe5, 0x12,  // in eax, 0x12
      0xe7, 0x10,  // out 0x10, eax
      0xf4,        // hlt
  };
  Machine a = make_machine(*hyp_, nullptr, code, true);
  ASSERT_TRUE(a.vcpu);
  auto exit = a.vcpu->run();
  ASSERT_TRUE(exit.ok());
  auto* in = std::get_if<hv::IoIn>(&*exit);
  ASSERT_NE(in, nullptr);
  ASSERT_EQ(in->port, 0x12);
  const uint32_t value = 0xabcd1234;
  std::memcpy(in->data.data(), &value, 4);

  auto saved = a.vcpu->save_state(msr_list(a.cpuid));
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_EQ(saved->regs.rax & 0xffffffff, value);
  EXPECT_EQ(saved->regs.rip, kEntry + 2);

  const auto image = memory_image(a.mem);
  Machine b = make_machine(*hyp_, &image, {}, false);
  ASSERT_TRUE(b.vcpu);
  ASSERT_TRUE(b.vcpu->restore_state(*saved).ok());
  EXPECT_EQ(next_out(*b.vcpu), (Out{kPort, value}));
}

TEST_F(HvStateTest, DifferentTscFrequencyIsRefusedWithoutScaling) {
  Machine a = make_machine(*hyp_, nullptr, {0xf4}, true);
  ASSERT_TRUE(a.vcpu);
  auto saved = a.vcpu->save_state(msr_list(a.cpuid));
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  ASSERT_TRUE(saved->tsc_khz.has_value());

  // Within 250 ppm is the same frequency: no KVM_SET_TSC_KHZ needed.
  auto close = *saved;
  *close.tsc_khz += static_cast<uint32_t>(*saved->tsc_khz / 10000);
  Machine b = make_machine(*hyp_, nullptr, {0xf4}, false);
  ASSERT_TRUE(b.vcpu);
  auto ok = b.vcpu->restore_state(close);
  EXPECT_TRUE(ok.ok()) << ok.error().message;

  auto doubled = *saved;
  *doubled.tsc_khz *= 2;
  Machine c = make_machine(*hyp_, nullptr, {0xf4}, false);
  ASSERT_TRUE(c.vcpu);
  auto r = c.vcpu->restore_state(doubled);
  // Hosts with TSC scaling restore it; the others must say why not.
  if (!r.ok()) {
    EXPECT_NE(r.error().message.find("KVM_CAP_TSC_CONTROL"), std::string::npos)
        << r.error().message;
  }
}

// Programs the PIC masks, PIT channel 0 and an IOAPIC redirection entry, then reports.
const std::vector<uint8_t> kProgramChips = {
    0xb0, 0xa5, 0xe6, 0x21,                    // PIC master IMR = 0xa5
    0xb0, 0x5a, 0xe6, 0xa1,                    // PIC slave IMR = 0x5a
    0xb0, 0x34, 0xe6, 0x43,                    // PIT channel 0: lo/hi byte, mode 2, binary
    0xb0, 0x34, 0xe6, 0x40,                    //   count low
    0xb0, 0x12, 0xe6, 0x40,                    //   count high
    0xbf, 0x00, 0x00, 0xc0, 0xfe,              // mov edi, IOAPIC base
    0xc7, 0x07, 0x10, 0x00, 0x00, 0x00,        // IOREGSEL = redirection entry 0, low half
    0xc7, 0x47, 0x10, 0x2f, 0xa0, 0x01, 0x00,  // IOWIN = masked, level, low, vector 0x2f
    0xe6, 0x10,                                // out 0x10, al: done
    0xf4,                                      // hlt
};

// Reads back what kProgramChips set: the two IMRs, PIT channel 0's status, the entry.
const std::vector<uint8_t> kReadChips = {
    0xe4, 0x21, 0xe6, 0x10,              // in al, 0x21; out
    0xe4, 0xa1, 0xe6, 0x10,              // in al, 0xa1; out
    0xb0, 0xe2, 0xe6, 0x43,              // PIT read-back: latch channel 0's status
    0xe4, 0x40, 0xe6, 0x10,              // in al, 0x40; out
    0xbf, 0x00, 0x00, 0xc0, 0xfe,        // mov edi, IOAPIC base
    0xc7, 0x07, 0x10, 0x00, 0x00, 0x00,  // IOREGSEL = redirection entry 0, low half
    0x8b, 0x47, 0x10,                    // mov eax, [rdi + 0x10]
    0xe7, 0x10,                          // out 0x10, eax
    0xf4,                                // hlt
};

std::vector<uint32_t> read_chips(Machine& m) {
  std::vector<uint32_t> values;
  for (const auto& o : outs(*m.vcpu, 4)) values.push_back(o.value);
  return values;
}

TEST_F(HvStateTest, IrqchipPitAndClockMoveToAnotherVm) {
  Machine a = make_machine(*hyp_, nullptr, kProgramChips, true);
  ASSERT_TRUE(a.vcpu);
  ASSERT_TRUE(next_out(*a.vcpu).has_value());
  std::this_thread::sleep_for(50ms);  // so that the clock is well away from a new VM's
  auto saved = a.vm->save_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  EXPECT_GE(saved->clock.ns, 50'000'000u);

  // The reading guest on a fresh VM sees none of it (so the check below can fail)...
  Machine fresh = make_machine(*hyp_, nullptr, kReadChips, true);
  ASSERT_TRUE(fresh.vcpu);
  auto before = read_chips(fresh);
  ASSERT_EQ(before.size(), 4u);
  EXPECT_NE(before[0], 0xa5u);
  EXPECT_NE(before[3], 0x1a02fu);

  // ...and on a VM restored from the saved chips, all of it.
  Machine b = make_machine(*hyp_, nullptr, kReadChips, true);
  ASSERT_TRUE(b.vcpu);
  auto clock_before = b.vm->get_clock_state();
  ASSERT_TRUE(clock_before.ok());
  EXPECT_LT(clock_before->ns, saved->clock.ns);
  auto restored = b.vm->restore_state(*saved);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  auto clock_after = b.vm->get_clock_state();
  ASSERT_TRUE(clock_after.ok());
  EXPECT_GE(clock_after->ns, saved->clock.ns) << "the guest clock continues, not from 0";
  EXPECT_LT(clock_after->ns, saved->clock.ns + 5'000'000'000ull);
  std::this_thread::sleep_for(10ms);
  auto clock_later = b.vm->get_clock();  // the plain call reads the same clock
  ASSERT_TRUE(clock_later.ok());
  EXPECT_GE(*clock_later, clock_after->ns + 10'000'000u) << "and keeps running";

  auto after = read_chips(b);
  ASSERT_EQ(after.size(), 4u);
  EXPECT_EQ(after[0], 0xa5u);
  EXPECT_EQ(after[1], 0x5au);
  EXPECT_EQ(after[2] & 0x3f, 0x34u) << "PIT channel 0: lo/hi access, mode 2, binary";
  EXPECT_EQ(after[3], 0x1a02fu);
}

// Firecracker's clock_realtime: the restored clock moves on by the wall-clock time since the
// save, whether KVM paired the clock with a wall-clock reading (TSC clocksource) or the VMM
// read one itself.
TEST_F(HvStateTest, ClockCanAdvanceByWallClockTime) {
  Machine a = make_machine(*hyp_, nullptr, {0xf4}, true);
  ASSERT_TRUE(a.vm);
  auto saved = a.vm->get_clock_state();
  ASSERT_TRUE(saved.ok()) << saved.error().message;
  ASSERT_TRUE(saved->flags & (hv::kClockRealtime | hv::kClockRealtimeSampled));
  ASSERT_GT(saved->realtime_ns, 1'600'000'000'000'000'000u) << "a wall-clock time, after 2020";
  std::this_thread::sleep_for(300ms);
  Machine b = make_machine(*hyp_, nullptr, {0xf4}, true);
  ASSERT_TRUE(b.vm);
  ASSERT_TRUE(b.vm->set_clock_state(*saved, hv::ClockRestore::Continue).ok());
  auto continued = b.vm->get_clock_state();
  ASSERT_TRUE(continued.ok());
  EXPECT_LT(continued->ns, saved->ns + 250'000'000u) << "Continue ignores the time away";

  ASSERT_TRUE(b.vm->set_clock_state(*saved, hv::ClockRestore::AdvanceByWallClock).ok());
  auto advanced = b.vm->get_clock_state();
  ASSERT_TRUE(advanced.ok());
  EXPECT_GE(advanced->ns, saved->ns + 300'000'000u) << "the 300 ms away are counted";
  EXPECT_LT(advanced->ns, saved->ns + 60'000'000'000ull);

  // A clock saved without any wall-clock reading (an old snapshot) cannot be advanced.
  hv::ClockState bare = *saved;
  bare.flags &= ~(hv::kClockRealtime | hv::kClockRealtimeSampled);
  auto refused = b.vm->set_clock_state(bare, hv::ClockRestore::AdvanceByWallClock);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("wall-clock"), std::string::npos)
      << refused.error().message;
}

TEST_F(HvStateTest, OpaqueStateOfTheWrongSizeIsRefused) {
  Machine a = make_machine(*hyp_, nullptr, {0xf4}, true);
  ASSERT_TRUE(a.vcpu);
  auto events = a.vcpu->set_vcpu_events(std::vector<uint8_t>(63));
  ASSERT_FALSE(events.ok());
  EXPECT_NE(events.error().message.find("63 bytes"), std::string::npos);
  EXPECT_FALSE(a.vcpu->set_xsave(std::vector<uint8_t>(100)).ok());
  auto vm_state = a.vm->save_state();
  ASSERT_TRUE(vm_state.ok());
  vm_state->pit.pop_back();
  auto r = a.vm->restore_state(*vm_state);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("PIT state is 111 bytes"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace ignition
