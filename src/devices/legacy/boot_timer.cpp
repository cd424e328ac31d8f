#include "devices/legacy/boot_timer.hpp"

#include <ctime>

namespace ignition::devices {

void BootTimer::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset != 0 || data.empty() || data[0] != magic_) return;
  auto wall = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start_);
  timespec cpu{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
  auto cpu_us = std::chrono::microseconds(cpu.tv_sec * 1000000LL + cpu.tv_nsec / 1000);
  report_(wall, cpu_us);
}

}  // namespace ignition::devices
