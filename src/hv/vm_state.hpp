// State of a VM outside its vCPUs and memory, for snapshots: the in-kernel interrupt
// controllers, the PIT and the guest clock.
#pragma once

#include <cstdint>
#include <vector>

namespace ignition::hv {

// kvmclock: guest time in ns, the host wall-clock time it goes with, and, when the host's
// clocksource allows, the host TSC at the instant it was read (flags say which are valid).
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
// Not KVM's: realtime_ns was read by the VMM right after the clock, because KVM pairs the two
// only when the host's clocksource is the TSC. Good to a few microseconds.
inline constexpr uint32_t kClockRealtimeSampled = 1u << 16;

// How Vm::restore_state() sets the guest clock.
enum class ClockRestore {
  // Guest time resumes where it was saved, as if the VM had never stopped. What clones and
  // rollback want: every restore of a snapshot sees the same clock.
  Continue,
  // Guest time moves on by the wall-clock time since the save (Firecracker's
  // `clock_realtime`; needs kClockRealtime or kClockRealtimeSampled in the saved state).
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
