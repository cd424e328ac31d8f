// The hardware-reduced ACPI sleep control register (FADT X_SLEEP_CONTROL_REG): the guest
// writes SLP_TYP=5 with SLP_EN to power off (S5), which stops the VM.
#pragma once

#include "devices/bus.hpp"
#include "devices/vm_exit.hpp"

namespace ignition::devices {

class AcpiSleep final : public BusDevice {
 public:
  static constexpr uint8_t kS5 = 5;
  explicit AcpiSleep(VmExitRequest& exit) : exit_(exit) {}

  void read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;  // sleep status: never woken
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset != 0 || data.empty()) return;
    constexpr uint8_t kSleepEnable = 1 << 5;
    uint8_t sleep_type = (data[0] >> 2) & 0x7;
    if ((data[0] & kSleepEnable) && sleep_type == kS5) exit_.request(ExitReason::Shutdown);
  }

 private:
  VmExitRequest& exit_;
};

}  // namespace ignition::devices
