// Local APIC setup at boot: LINT0 delivers the PIC's ExtINT and LINT1 delivers NMI, as
// on a PC, so guests that use the legacy PIC (or NMI watchdogs) work. Firecracker's
// set_lint does the same.
#pragma once

#include <cstdint>
#include <cstring>

#include "hv/cpu_state.hpp"

namespace ignition::x86_64 {

inline void configure_lint(hv::LapicState& lapic) {
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kDeliveryModeMask = 0x700;
  constexpr uint32_t kDeliveryExtInt = 0x700, kDeliveryNmi = 0x400;
  auto update = [&](size_t reg, uint32_t mode) {
    uint32_t value;
    std::memcpy(&value, &lapic.regs[reg], 4);
    value = (value & ~kDeliveryModeMask) | mode;
    std::memcpy(&lapic.regs[reg], &value, 4);
  };
  update(kLvtLint0, kDeliveryExtInt);
  update(kLvtLint1, kDeliveryNmi);
}

}  // namespace ignition::x86_64
