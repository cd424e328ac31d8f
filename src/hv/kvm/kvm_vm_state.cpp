// The KVM VM's snapshot state: the in-kernel PIC pair and IOAPIC, the PIT and kvmclock
// (after Firecracker's arch/x86_64/vm.rs save_state and restore_state).
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstring>
#include <ctime>

#include "hv/kvm/kvm_vm.hpp"

namespace ignition::hv::kvm {

namespace {

static_assert(sizeof(kvm_irqchip) == 520 && sizeof(kvm_pit_state2) == 112 &&
              sizeof(kvm_clock_data) == 48);
static_assert(kClockTscStable == KVM_CLOCK_TSC_STABLE && kClockRealtime == KVM_CLOCK_REALTIME &&
              kClockHostTsc == KVM_CLOCK_HOST_TSC);

constexpr size_t kChipSize = sizeof(kvm_irqchip{}.chip);

const char* chip_name(uint32_t chip_id) {
  switch (chip_id) {
    case KVM_IRQCHIP_PIC_MASTER:
      return "PIC master";
    case KVM_IRQCHIP_PIC_SLAVE:
      return "PIC slave";
    default:
      return "IOAPIC";
  }
}

}  // namespace

Result<std::vector<uint8_t>> KvmVm::get_irqchip(uint32_t chip_id) {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  if (::ioctl(fd_.get(), KVM_GET_IRQCHIP, &chip) < 0)
    return err("KVM_GET_IRQCHIP ({}): {}", chip_name(chip_id), errno_string());
  const auto* bytes = reinterpret_cast<const uint8_t*>(&chip.chip);
  return std::vector<uint8_t>(bytes, bytes + kChipSize);
}

Result<void> KvmVm::set_irqchip(uint32_t chip_id, const std::vector<uint8_t>& state) {
  if (state.size() != kChipSize)
    return err("{} state is {} bytes; KVM's is {}", chip_name(chip_id), state.size(), kChipSize);
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  std::memcpy(&chip.chip, state.data(), kChipSize);
  if (::ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip) < 0)
    return err("KVM_SET_IRQCHIP ({}): {}", chip_name(chip_id), errno_string());
  return {};
}

namespace {

uint64_t wall_clock_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

Result<ClockState> KvmVm::get_clock_state() {
  kvm_clock_data k{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &k) < 0) return err("KVM_GET_CLOCK: {}", errno_string());
  ClockState s{k.clock, k.flags, k.realtime, k.host_tsc};
  if (!(k.flags & KVM_CLOCK_REALTIME)) {
    s.realtime_ns = wall_clock_ns();
    s.flags |= kClockRealtimeSampled;
  }
  return s;
}

Result<void> KvmVm::set_clock_state(const ClockState& clock, ClockRestore mode) {
  kvm_clock_data k{};
  k.clock = clock.ns;
  if (mode == ClockRestore::AdvanceByWallClock) {
    if (clock.flags & kClockRealtime) {
      // KVM adds the wall-clock time elapsed since `realtime` to `clock`, as Firecracker asks.
      k.flags = KVM_CLOCK_REALTIME;
      k.realtime = clock.realtime_ns;
    } else if (clock.flags & kClockRealtimeSampled) {
      // The same sum, done here: KVM took no wall-clock reading to pair with the clock.
      uint64_t now = wall_clock_ns();
      if (now > clock.realtime_ns) k.clock += now - clock.realtime_ns;
    } else {
      return err(
          "the saved guest clock has no wall-clock reference, so it cannot be advanced "
          "by wall-clock time");
    }
  }
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &k) < 0) return err("KVM_SET_CLOCK: {}", errno_string());
  return {};
}

Result<VmState> KvmVm::save_state() {
  VmState s;
  kvm_pit_state2 pit{};
  if (::ioctl(fd_.get(), KVM_GET_PIT2, &pit) < 0) return err("KVM_GET_PIT2: {}", errno_string());
  const auto* pit_bytes = reinterpret_cast<const uint8_t*>(&pit);
  s.pit.assign(pit_bytes, pit_bytes + sizeof(pit));
  IGN_ASSIGN_OR_RETURN(s.clock, get_clock_state());
  IGN_ASSIGN_OR_RETURN(s.pic_master, get_irqchip(KVM_IRQCHIP_PIC_MASTER));
  IGN_ASSIGN_OR_RETURN(s.pic_slave, get_irqchip(KVM_IRQCHIP_PIC_SLAVE));
  IGN_ASSIGN_OR_RETURN(s.ioapic, get_irqchip(KVM_IRQCHIP_IOAPIC));
  return s;
}

Result<void> KvmVm::restore_state(const VmState& s, ClockRestore clock) {
  kvm_pit_state2 pit{};
  if (s.pit.size() != sizeof(pit))
    return err("PIT state is {} bytes; KVM's is {}", s.pit.size(), sizeof(pit));
  std::memcpy(&pit, s.pit.data(), sizeof(pit));
  if (::ioctl(fd_.get(), KVM_SET_PIT2, &pit) < 0) return err("KVM_SET_PIT2: {}", errno_string());
  IGN_TRY(set_clock_state(s.clock, clock));
  IGN_TRY(set_irqchip(KVM_IRQCHIP_PIC_MASTER, s.pic_master));
  IGN_TRY(set_irqchip(KVM_IRQCHIP_PIC_SLAVE, s.pic_slave));
  return set_irqchip(KVM_IRQCHIP_IOAPIC, s.ioapic);
}

}  // namespace ignition::hv::kvm
