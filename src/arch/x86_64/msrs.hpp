// Model-specific registers: the values a vCPU boots with, and which MSRs a snapshot saves
// (after Firecracker's arch/x86_64/msr.rs).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hv/cpu_state.hpp"

namespace ignition::x86_64 {

// IA32_TSC_DEADLINE: restored after the LAPIC (in TSC-deadline mode) and IA32_TSC.
inline constexpr uint32_t kMsrTscDeadline = 0x6e0;

// The MSRs the VMM refers to by name.
namespace msr {
inline constexpr uint32_t kTsc = 0x10;
inline constexpr uint32_t kApicBase = 0x1b;
inline constexpr uint32_t kSysenterCs = 0x174;
inline constexpr uint32_t kSysenterEsp = 0x175;
inline constexpr uint32_t kSysenterEip = 0x176;
inline constexpr uint32_t kMiscEnable = 0x1a0;
inline constexpr uint32_t kMtrrPhysBase0 = 0x200;
inline constexpr uint32_t kPat = 0x277;
inline constexpr uint32_t kMtrrDefType = 0x2ff;
inline constexpr uint32_t kMc0Ctl = 0x400;
inline constexpr uint32_t kTscDeadline = 0x6e0;
inline constexpr uint32_t kEfer = 0xc0000080;
inline constexpr uint32_t kStar = 0xc0000081;
inline constexpr uint32_t kLstar = 0xc0000082;
inline constexpr uint32_t kCstar = 0xc0000083;
inline constexpr uint32_t kSyscallMask = 0xc0000084;
inline constexpr uint32_t kKernelGsBase = 0xc0000102;

inline constexpr uint64_t kMiscEnableFastString = 1;  // IA32_MISC_ENABLE[0]: fast REP MOVS/STOS
inline constexpr uint64_t kMtrrEnable = 1 << 11;      // IA32_MTRR_DEF_TYPE[11]
inline constexpr uint64_t kMemTypeWriteBack = 6;
}  // namespace msr

// The MSR values every vCPU starts with: SYSENTER/SYSCALL entry points and KERNEL_GS_BASE at 0,
// the TSC at 0, fast strings on, and MTRRs enabled with write-back as the default memory type
// (a guest kernel that finds MTRRs disabled maps all RAM uncached).
std::vector<hv::Msr> boot_msrs();

// Whether a snapshot saves this MSR: architectural and KVM paravirtual state a guest can change,
// not model-specific read-only or performance-monitoring registers.
bool msr_should_snapshot(uint32_t index);

// The hypervisor's MSR index list (KVM_GET_MSR_INDEX_LIST) filtered to what a snapshot saves,
// without duplicates, in restore order: IA32_TSC_DEADLINE last, because KVM arms the timer
// relative to the TSC when it is written.
std::vector<uint32_t> snapshot_msr_list(std::span<const uint32_t> kvm_list);

// As above, plus the MSRs KVM saves but does not list, which exist when the guest's CPUID says
// so: MTRRs and PAT (CPUID.1:EDX.MTRR) and 32 machine-check banks (CPUID.1:EDX.MCE).
std::vector<uint32_t> snapshot_msr_list(std::span<const uint32_t> kvm_list,
                                        std::span<const hv::CpuidEntry> guest_cpuid);

}  // namespace ignition::x86_64
