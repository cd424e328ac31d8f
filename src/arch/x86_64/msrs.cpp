// Boot MSR values and the snapshot MSR filter. The serialisable ranges follow Firecracker's
// SERIALIZABLE_MSR_RANGES; the CPUID-dependent extras its msrs_to_save_by_cpuid.
#include "arch/x86_64/msrs.hpp"

#include <algorithm>

#include "arch/x86_64/cpuid.hpp"

namespace ignition::x86_64 {
namespace {

struct MsrRange {
  uint32_t base;
  uint32_t count = 1;
  bool contains(uint32_t index) const { return index >= base && index - base < count; }
};

// Sorted by base. Names from the Intel SDM / AMD APM.
constexpr MsrRange kSnapshotRanges[] = {
    {0x0},                // IA32_P5_MC_ADDR
    {0x1},                // IA32_P5_MC_TYPE
    {msr::kTsc},          // IA32_TIME_STAMP_COUNTER
    {0x17},               // IA32_PLATFORM_ID
    {msr::kApicBase},     // IA32_APIC_BASE
    {0x2a},               // EBL_CR_POWERON
    {0x2c},               // EBC_FREQUENCY_ID
    {0x34},               // SMI_COUNT
    {0x3a},               // IA32_FEATURE_CONTROL
    {0x3b},               // IA32_TSC_ADJUST
    {0x48},               // IA32_SPEC_CTRL
    {0x49},               // IA32_PRED_CMD
    {0x79},               // IA32_BIOS_UPDT_TRIG
    {0x8b},               // IA32_BIOS_SIGN_ID (microcode revision)
    {0x9e},               // IA32_SMBASE
    {0xcd},               // FSB_FREQ
    {0xce},               // PLATFORM_INFO
    {0xe2},               // PKG_CST_CONFIG_CONTROL
    {0xe7},               // IA32_MPERF
    {0xe8},               // IA32_APERF
    {0xfe},               // IA32_MTRRCAP
    {0x11e},              // BBL_CR_CTL3
    {0x122},              // IA32_TSX_CTRL
    {0x140},              // MISC_FEATURE_ENABLES
    {msr::kSysenterCs},   // IA32_SYSENTER_CS
    {msr::kSysenterEsp},  // IA32_SYSENTER_ESP
    {msr::kSysenterEip},  // IA32_SYSENTER_EIP
    {0x179},              // IA32_MCG_CAP
    {0x17a},              // IA32_MCG_STATUS
    // Not IA32_MCG_CTL (0x17b): KVM only allows it with MCG_CAP.CTL_P, which it leaves clear.
    {0x198},               // IA32_PERF_STATUS
    {msr::kMiscEnable},    // IA32_MISC_ENABLE
    {0x1a4},               // MISC_FEATURE_CONTROL
    {0x1aa},               // MISC_PWR_MGMT
    {0x1ad},               // TURBO_RATIO_LIMIT
    {0x1ae},               // TURBO_RATIO_LIMIT1
    {0x1d9},               // IA32_DEBUGCTL
    {0x1db, 4},            // LASTBRANCH_FROM/TO_IP, LASTINT_FROM/TO_IP
    {0x1fc},               // POWER_CTL
    {0x200, 0x100},        // variable MTRRs, fixed MTRRs, PAT, MTRR_DEF_TYPE
    {0x3fc, 3},            // CORE_C3/C6/C7_RESIDENCY
    {msr::kMc0Ctl, 0x80},  // machine-check banks 0-31
    {0x606},               // RAPL_POWER_UNIT
    {0x60a, 3},            // PKGC3/6/7_IRTL
    {0x610},               // PKG_POWER_LIMIT
    {0x611},               // PKG_ENERGY_STATUS
    {0x613},               // PKG_PERF_STATUS
    {0x614},               // PKG_POWER_INFO
    {0x618},               // DRAM_POWER_LIMIT
    {0x619},               // DRAM_ENERGY_STATUS
    {0x61b},               // DRAM_PERF_STATUS
    {0x61c},               // DRAM_POWER_INFO
    {0x648, 5},            // CONFIG_TDP_NOMINAL/LEVEL_1/LEVEL_2/CONTROL, TURBO_ACTIVATION_RATIO
    {msr::kTscDeadline},   // IA32_TSC_DEADLINE
    {0x800, 0x400},        // x2APIC registers
    {0xda0},               // IA32_XSS
    {0x4b564d00, 0x100},   // KVM paravirtual MSRs (kvmclock, async PF, steal time, PV EOI...)
    {msr::kEfer},
    {msr::kStar},
    {msr::kLstar},
    {msr::kCstar},
    {msr::kSyscallMask},
    {0xc0000100},  // FS_BASE
    {0xc0000101},  // GS_BASE
    {msr::kKernelGsBase},
    {0xc0000103},  // TSC_AUX
    {0xc0010015},  // AMD HWCR
};

// MSRs restored after all others because their meaning depends on them.
constexpr uint32_t kDeferred[] = {msr::kTscDeadline};

bool is_deferred(uint32_t index) {
  return std::find(std::begin(kDeferred), std::end(kDeferred), index) != std::end(kDeferred);
}

bool cpuid_has(std::span<const hv::CpuidEntry> cpuid, uint32_t leaf, uint32_t bit_of_edx) {
  const hv::CpuidEntry* e = find_cpuid_entry(cpuid, leaf, 0);
  return e && ((e->edx >> bit_of_edx) & 1);
}

}  // namespace

std::vector<hv::Msr> boot_msrs() {
  return {
      {msr::kSysenterCs, 0},
      {msr::kSysenterEsp, 0},
      {msr::kSysenterEip, 0},
      {msr::kStar, 0},
      {msr::kCstar, 0},
      {msr::kKernelGsBase, 0},
      {msr::kSyscallMask, 0},
      {msr::kLstar, 0},
      {msr::kTsc, 0},
      {msr::kMiscEnable, msr::kMiscEnableFastString},
      {msr::kMtrrDefType, msr::kMtrrEnable | msr::kMemTypeWriteBack},
  };
}

bool msr_should_snapshot(uint32_t index) {
  return std::any_of(std::begin(kSnapshotRanges), std::end(kSnapshotRanges),
                     [index](const MsrRange& r) { return r.contains(index); });
}

std::vector<uint32_t> snapshot_msr_list(std::span<const uint32_t> kvm_list) {
  return snapshot_msr_list(kvm_list, {});
}

std::vector<uint32_t> snapshot_msr_list(std::span<const uint32_t> kvm_list,
                                        std::span<const hv::CpuidEntry> guest_cpuid) {
  std::vector<uint32_t> out;
  for (uint32_t index : kvm_list) {
    if (msr_should_snapshot(index)) out.push_back(index);
  }
  constexpr uint32_t kMtrrBit = 12;
  constexpr uint32_t kMceBit = 7;
  if (cpuid_has(guest_cpuid, 0x1, kMtrrBit)) {
    for (uint32_t i = 0; i < 16; ++i) out.push_back(msr::kMtrrPhysBase0 + i);  // 8 base/mask
    for (uint32_t fixed :
         {0x250u, 0x258u, 0x259u, 0x268u, 0x269u, 0x26au, 0x26bu, 0x26cu, 0x26du, 0x26eu, 0x26fu}) {
      out.push_back(fixed);
    }
    out.push_back(msr::kPat);
    out.push_back(msr::kMtrrDefType);
  }
  if (cpuid_has(guest_cpuid, 0x1, kMceBit)) {
    for (uint32_t i = 0; i < 32 * 4; ++i) out.push_back(msr::kMc0Ctl + i);  // CTL/STATUS/ADDR/MISC
  }

  // Ascending, unique, and the deferred ones at the end.
  std::sort(out.begin(), out.end(), [](uint32_t a, uint32_t b) {
    return is_deferred(a) != is_deferred(b) ? is_deferred(b) : a < b;
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace ignition::x86_64
