// cpu-config: a custom CPU template (CPUID, MSR and KVM capability modifiers), as in
// Firecracker's CpuConfig API object, x86_64 fields only.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace ignition::config {

// A bitmap "0b10x1...": bits set in `filter` are forced to the matching bit of `value`;
// the others ('x') keep what the host/KVM reported. new = (old & ~filter) | value.
struct BitFilter {
  uint64_t filter = 0;
  uint64_t value = 0;

  uint64_t apply(uint64_t old) const { return (old & ~filter) | value; }
  bool operator==(const BitFilter&) const = default;
};

enum class CpuidRegister { kEax, kEbx, kEcx, kEdx };

struct CpuidRegisterModifier {
  CpuidRegister reg = CpuidRegister::kEax;
  BitFilter bitmap{};  // 32 bits
  bool operator==(const CpuidRegisterModifier&) const = default;
};

struct CpuidLeafModifier {
  uint32_t leaf = 0;
  uint32_t subleaf = 0;
  uint32_t flags = 0;  // KVM_CPUID_FLAG_* for the entry
  std::vector<CpuidRegisterModifier> modifiers{};
  bool operator==(const CpuidLeafModifier&) const = default;
};

struct MsrModifier {
  uint32_t addr = 0;
  BitFilter bitmap{};  // 64 bits
  bool operator==(const MsrModifier&) const = default;
};

// "121" requires KVM capability 121; "!121" removes it from the required set.
struct KvmCapabilityModifier {
  uint32_t capability = 0;
  bool remove = false;
  bool operator==(const KvmCapabilityModifier&) const = default;
};

struct CpuConfig {
  std::vector<KvmCapabilityModifier> kvm_capabilities{};
  std::vector<CpuidLeafModifier> cpuid_modifiers{};
  std::vector<MsrModifier> msr_modifiers{};
  bool operator==(const CpuConfig&) const = default;
};

// Numbers are strings with a 0x, 0b or decimal form; bitmaps are "0b" + up to 32 (CPUID) or
// 64 (MSR) of 0/1/x, '_' allowed as a separator. aarch64 fields are rejected.
Result<CpuConfig> parse_cpu_config(const nlohmann::json& j);
nlohmann::json to_json(const CpuConfig& c);
std::string_view to_string(CpuidRegister r);

}  // namespace ignition::config
