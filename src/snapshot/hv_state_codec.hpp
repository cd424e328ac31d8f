// Snapshot encodings of the hypervisor seam's vCPU and VM state (hv::VcpuState, hv::VmState),
// field by field. Their opaque parts keep the backend's layout: check the file's tag.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "hv/cpu_state.hpp"
#include "hv/vm_state.hpp"

namespace ignition::snapshot {

std::vector<uint8_t> encode_vcpu_state(const hv::VcpuState& state);
Result<hv::VcpuState> decode_vcpu_state(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode_vm_state(const hv::VmState& state);
Result<hv::VmState> decode_vm_state(std::span<const uint8_t> bytes);

}  // namespace ignition::snapshot
