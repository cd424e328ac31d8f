// x86_64 vCPU state as the VMM sees it, independent of any hypervisor's structs.
// The KVM backend translates these to and from <linux/kvm.h>; nothing above src/hv/
// includes that header.
#pragma once

#include <array>
#include <cstdint>
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

}  // namespace ignition::hv
