// What an in-process reset rolls a machine back to: every vCPU, the VM's chips and clock,
// every device, and an image of RAM. Taken by Machine::checkpoint(); kept in memory only.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "hv/cpu_state.hpp"
#include "hv/vm_state.hpp"
#include "memory/dirty_bitmap.hpp"
#include "memory/memory_image.hpp"

namespace ignition::vmm {

struct Checkpoint {
  std::vector<hv::VcpuState> vcpus;
  hv::VmState vm;
  std::vector<uint8_t> serial;
  std::vector<uint8_t> i8042;
  std::vector<std::vector<uint8_t>> virtio;  // by slot
  MemoryImage ram;
  DirtyBitmap dirty;  // pages written since the checkpoint (or the last reset)
};

// One reset, timed: pages copied back from the image, then vCPU, chip and device state.
struct ResetStats {
  uint64_t pages = 0;
  std::chrono::nanoseconds copy{0};
  std::chrono::nanoseconds state{0};
};

}  // namespace ignition::vmm
