// The guest CPUID template: what each vCPU is told about its processor. It starts from what the
// hypervisor supports, is normalised per vCPU the way Firecracker does, and hides what this
// kind of KVM cannot emulate.
//
// Default mask (CpuidMask{}), and why:
//   hide_cx16  = true  clears CPUID.1:ECX[13] (CMPXCHG16B). The nested KVM on the development
//                      machines emulates guest ring-0 code and fails on `lock cmpxchg16b`, which
//                      Linux's SLUB allocator uses when CX16 is advertised.
//   hide_xsave = true  clears CPUID.1:ECX[26] (XSAVE) and [27] (OSXSAVE); everything that needs
//                      XSAVE-managed state goes with it (see kDependencies in cpuid.cpp): XSAVEOPT,
//                      XSAVEC, XSAVES, XGETBV1, XFD, AVX, AVX2, FMA, F16C, AVX-512*, VAES,
//                      VPCLMULQDQ, AVX-VNNI, PKU/OSPKE, MPX, AMX, CET, APX, XOP/FMA4/LWP. Leaf 0xD
//                      is zeroed. The same KVM cannot emulate `xrstor`, which Linux's FPU init runs
//                      when XSAVE is advertised; without it the guest uses FXSAVE/FXRSTOR. Booting
//                      Linux also wants `noxsave` on its command line.
// On a machine with hardware virtualisation both can be turned off to pass the host's features
// through (CpuidMask::passthrough()).
// Measured on the development machines' KVM (kvm_pvm), presumably because guest user code runs
// natively there: it shows the guest the host's user-visible features in CPUID.1:ECX (SSE3..AVX,
// XSAVE, F16C, RDRAND), CPUID.1:EDX, CPUID.7.0 and CPUID.0xD whatever KVM_SET_CPUID2 says. Hiding
// CX16, the topology and identity fields and all other leaves do reach the guest; XSAVE does not,
// which is why a Linux guest there also needs `noxsave`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "hv/cpu_state.hpp"

namespace ignition::x86_64 {

enum class CpuidRegister : uint8_t { Eax, Ebx, Ecx, Edx };

// One forced CPUID bit. Text form (parse_cpuid_override): `LEAF:SUBLEAF:REGISTER:BIT=VALUE`,
// e.g. `0x1:0:ecx:13=0` clears CX16. LEAF and SUBLEAF are decimal or 0x-hex, REGISTER is
// eax|ebx|ecx|edx (any case), BIT is 0-31, VALUE is 0 or 1.
struct CpuidOverride {
  uint32_t leaf = 0;
  uint32_t subleaf = 0;
  CpuidRegister reg = CpuidRegister::Eax;
  uint8_t bit = 0;
  bool value = false;

  bool operator==(const CpuidOverride&) const = default;
};

// Which features to hide from guests. The default hides what this kind of KVM cannot emulate
// (see the top of this file).
struct CpuidMask {
  bool hide_cx16 = true;
  bool hide_xsave = true;
  // Applied after normalisation and the two switches above. Setting a bit whose prerequisite is
  // hidden (e.g. AVX2 while XSAVE is hidden) is an error, not silently dropped; setting a bit in
  // a leaf the hypervisor does not report is an error; clearing one there is a no-op.
  std::vector<CpuidOverride> overrides;

  // Hides nothing: the hypervisor's features as they are (for hardware-virtualised hosts).
  static CpuidMask passthrough() { return CpuidMask{false, false, {}}; }
};

// Where one vCPU sits. APIC IDs are the vCPU ids; with threads_per_core == 2 consecutive ids are
// sibling threads of one core. All vCPUs share one socket.
struct CpuTopology {
  uint32_t vcpu_id = 0;
  uint32_t vcpu_count = 1;        // 1..kMaxCpuidVcpus
  uint32_t threads_per_core = 1;  // 1 or 2; ignored (taken as 1) for a single vCPU
};

// CPUID.1:EBX[23:16] holds the next power of two of the vCPU count in 8 bits.
inline constexpr uint32_t kMaxCpuidVcpus = 128;

// The CPUID table for one vCPU, sorted by (leaf, subleaf), ready for KVM_SET_CPUID2.
// Fails on a bad topology, a `supported` list without leaves 0x0 and 0x1, or an override that
// cannot take effect.
Result<std::vector<hv::CpuidEntry>> build_cpuid(std::span<const hv::CpuidEntry> supported,
                                                const CpuTopology& topo, const CpuidMask& mask);

// One override in the text form described at CpuidOverride.
Result<CpuidOverride> parse_cpuid_override(std::string_view text);
// A comma-separated list of overrides; blanks around items are ignored; "" is an empty list.
Result<std::vector<CpuidOverride>> parse_cpuid_overrides(std::string_view text);
// The canonical text form, e.g. "0x1:0:ecx:13=0".
std::string to_string(const CpuidOverride& override_bit);

// The entry the guest sees for CPUID(leaf, subleaf): an exact match, or an entry whose subleaf
// is not significant. nullptr when there is none.
const hv::CpuidEntry* find_cpuid_entry(std::span<const hv::CpuidEntry> entries, uint32_t leaf,
                                       uint32_t subleaf);

}  // namespace ignition::x86_64
