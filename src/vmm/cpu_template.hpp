// Applies a custom CPU template (Firecracker's cpu-config: CPUID and MSR bit modifiers)
// on top of the normalised CPUID and the boot MSRs of a vCPU.
#pragma once

#include <vector>

#include "base/result.hpp"
#include "hv/cpu_state.hpp"
#include "vmm/config/cpu_config.hpp"

namespace ignition::vmm {

// A modifier for a leaf the template does not have adds that leaf (from zeros); an MSR
// modifier for an MSR not in the list adds it (from zero).
void apply_cpu_template(const config::CpuConfig& tmpl, std::vector<hv::CpuidEntry>& cpuid,
                        std::vector<hv::Msr>& msrs);

}  // namespace ignition::vmm
