// State of a VM outside its vCPUs and memory, for snapshots: the in-kernel interrupt
// controllers, the PIT and the guest clock.
#pragma once

#include <cstdint>
#include <vector>

namespace ignition::hv {

// kvmclock: guest time in ns and, when the host's clocksource allows, the host wall-clock
// and TSC at the instant it was read (flags say which are valid).
struct ClockState {
  uint64_t ns = 0;
  uint32_t flags = 0;
  uint64_t realtime_ns = 0;
  uint64_t host_tsc = 0;
};
// ClockState::flags bits (KVM's values).
inline constexpr uint32_t kClockTscStable = 2;
inline constexpr uint32_t kClockRealtime = 4;
inline constexpr uint32_t kClockHostTsc = 8;

// How Vm::restore_state() sets the guest clock.
enum class ClockRestore {
  // Guest time resumes where it was saved, as if the VM had never stopped. What clones and
  // rollback want: every restore of a snapshot sees the same clock.
  Continue,
  // Guest time moves on by the wall-clock time since the save (needs kClockRealtime in the
  // saved state).
  AdvanceByWallClock,
};

// The chips' register state in the hypervisor's own layouts (opaque, like the XSAVE area in
// VcpuState).
struct VmState {
  std::vector<uint8_t> pic_master;
  std::vector<uint8_t> pic_slave;
  std::vector<uint8_t> ioapic;
  std::vector<uint8_t> pit;
  ClockState clock;
};

}  // namespace ignition::hv
