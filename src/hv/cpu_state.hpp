// x86_64 vCPU state as the VMM sees it, independent of any hypervisor's structs.
// The KVM backend translates these to and from <linux/kvm.h>; nothing above src/hv/
// includes that header.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace ignition::hv {

struct Regs {
  uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
  uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
  uint64_t rip, rflags;
};

struct Segment {
  uint64_t base;
  uint32_t limit;
  uint16_t selector;
  uint8_t type, present, dpl, db, s, l, g, avl;
  uint8_t unusable;
};

struct DescriptorTable {
  uint64_t base;
  uint16_t limit;
};

struct Sregs {
  Segment cs, ds, es, fs, gs, ss;
  Segment tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0, cr2, cr3, cr4, cr8;
  uint64_t efer;
  uint64_t apic_base;
  std::array<uint64_t, 4> interrupt_bitmap;
};

struct Msr {
  uint32_t index;
  uint64_t value;
};

struct CpuidEntry {
  uint32_t function;
  uint32_t index;
  uint32_t flags;  // KVM_CPUID_FLAG_SIGNIFCANT_INDEX is bit 0
  uint32_t eax, ebx, ecx, edx;
};
inline constexpr uint32_t kCpuidFlagSignificantIndex = 1;

struct Fpu {
  std::array<std::array<uint8_t, 16>, 8> fpr;
  uint16_t fcw, fsw;
  uint8_t ftwx;
  uint16_t last_opcode;
  uint64_t last_ip, last_dp;
  std::array<std::array<uint8_t, 16>, 16> xmm;
  uint32_t mxcsr;
};

// Local APIC register page (KVM_GET_LAPIC layout: 1 KiB of registers).
struct LapicState {
  std::array<uint8_t, 1024> regs;
};

// ---- the rest of a vCPU's state, for snapshots ----
//
// Some parts are opaque bytes in the hypervisor's own layout (XSAVE area, pending events):
// describing them field by field would buy nothing, since only the same backend can load
// them again. A snapshot holding them is therefore specific to its backend (see
// Hypervisor::state_tag()).

// Extended control registers (XCR0 is the one that exists today).
struct Xcr {
  uint32_t index;
  uint64_t value;
};

struct DebugRegs {
  std::array<uint64_t, 4> db;  // DR0-DR3
  uint64_t dr6, dr7;
  uint64_t flags;
};

// Multiprocessing state, numbered as KVM numbers it; values not named here (other
// architectures, newer kernels) are carried through unchanged.
enum class MpState : uint32_t {
  Runnable = 0,
  Uninitialized = 1,  // an AP waiting for INIT/SIPI
  InitReceived = 2,
  Halted = 3,
  SipiReceived = 4,
};

// Everything that makes up one vCPU, as Vcpu::save_state() reads it and
// Vcpu::restore_state() loads it (in the order the hypervisor needs).
struct VcpuState {
  std::vector<CpuidEntry> cpuid;
  MpState mp_state = MpState::Runnable;
  Regs regs{};
  Sregs sregs{};
  // The XSAVE area in the hardware XSAVE format (x87, SSE and every enabled extended
  // component); at least 4 KiB. Supersedes Fpu. (KVM_SET_FPU does not set XSTATE_BV, so on
  // an XSAVE host XMM values given to set_fpu() alone read back here as zero.)
  std::vector<uint8_t> xsave;
  std::vector<Xcr> xcrs;
  DebugRegs debug_regs{};
  LapicState lapic{};
  // In restore order: IA32_TSC before IA32_TSC_DEADLINE. A deadline of 0 is saved as the
  // TSC's value (Firecracker's fix for guests that lost their timer across a restore).
  std::vector<Msr> msrs;
  // Pending exception, interrupt and NMI, interrupt shadow, SMM (struct kvm_vcpu_events).
  std::vector<uint8_t> events;
  // The guest's TSC frequency; absent when the hypervisor cannot say.
  std::optional<uint32_t> tsc_khz;
};

}  // namespace ignition::hv
