#include "vmm/cpu_template.hpp"

namespace ignition::vmm {

namespace {
uint32_t& register_of(hv::CpuidEntry& e, config::CpuidRegister reg) {
  switch (reg) {
    case config::CpuidRegister::kEax:
      return e.eax;
    case config::CpuidRegister::kEbx:
      return e.ebx;
    case config::CpuidRegister::kEcx:
      return e.ecx;
    case config::CpuidRegister::kEdx:
      return e.edx;
  }
  return e.eax;
}
}  // namespace

void apply_cpu_template(const config::CpuConfig& tmpl, std::vector<hv::CpuidEntry>& cpuid,
                        std::vector<hv::Msr>& msrs) {
  for (const auto& leaf : tmpl.cpuid_modifiers) {
    hv::CpuidEntry* entry = nullptr;
    for (auto& e : cpuid)
      if (e.function == leaf.leaf && e.index == leaf.subleaf) entry = &e;
    if (!entry) {
      cpuid.push_back({leaf.leaf, leaf.subleaf, leaf.flags, 0, 0, 0, 0});
      entry = &cpuid.back();
    }
    for (const auto& m : leaf.modifiers) {
      uint32_t& reg = register_of(*entry, m.reg);
      reg = static_cast<uint32_t>(m.bitmap.apply(reg));
    }
  }
  for (const auto& m : tmpl.msr_modifiers) {
    hv::Msr* msr = nullptr;
    for (auto& existing : msrs)
      if (existing.index == m.addr) msr = &existing;
    if (!msr) {
      msrs.push_back({m.addr, 0});
      msr = &msrs.back();
    }
    msr->value = m.bitmap.apply(msr->value);
  }
}

}  // namespace ignition::vmm
