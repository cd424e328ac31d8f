// Firecracker's boot-time marker: when the guest writes the magic byte, log how long
// it took from VMM start, so boot time can be measured from inside the guest's path.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "devices/bus.hpp"

namespace ignition::devices {

class BootTimer final : public BusDevice {
 public:
  using Clock = std::chrono::steady_clock;
  using Report = std::function<void(std::chrono::microseconds wall, std::chrono::microseconds cpu)>;

  // `report` receives the time since `start` and the process CPU time at the marker.
  BootTimer(Clock::time_point start, uint8_t magic, Report report)
      : start_(start), magic_(magic), report_(std::move(report)) {}

  void read(uint64_t, std::span<uint8_t> data) override {
    for (auto& b : data) b = 0;
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override;

 private:
  Clock::time_point start_;
  uint8_t magic_;
  Report report_;
};

}  // namespace ignition::devices
