// The KVM vCPU's snapshot state: one ioctl pair per part, and saving and restoring the
// whole in the order KVM needs (after Firecracker's arch/x86_64/vcpu.rs save_state and
// restore_state, whose comments explain each constraint).
#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>

#include "hv/kvm/flex_arrays.hpp"
#include "hv/kvm/kvm_vcpu.hpp"

namespace ignition::hv::kvm {

namespace {

constexpr uint32_t kMsrTsc = 0x10;
constexpr uint32_t kMsrTscDeadline = 0x6e0;
constexpr size_t kLegacyXsaveSize = sizeof(XsaveHeader);
// TSC frequencies this close count as equal: host calibration varies by about this much
// from boot to boot (QEMU's and Firecracker's tolerance).
constexpr uint64_t kTscTolerancePpm = 250;

// These structs have no flexible arrays, so C++ sees KVM's sizes.
static_assert(sizeof(kvm_vcpu_events) == 64 && sizeof(kvm_xcrs) == 392);
static_assert(sizeof(kvm_debugregs) == 128 && sizeof(kvm_mp_state) == 4);
static_assert(static_cast<uint32_t>(MpState::Runnable) == KVM_MP_STATE_RUNNABLE &&
              static_cast<uint32_t>(MpState::Uninitialized) == KVM_MP_STATE_UNINITIALIZED &&
              static_cast<uint32_t>(MpState::InitReceived) == KVM_MP_STATE_INIT_RECEIVED &&
              static_cast<uint32_t>(MpState::Halted) == KVM_MP_STATE_HALTED &&
              static_cast<uint32_t>(MpState::SipiReceived) == KVM_MP_STATE_SIPI_RECEIVED);

// The indexes in `wanted` that `got` lacks, for an error message.
std::string missing_msrs(std::span<const uint32_t> wanted, const std::vector<Msr>& got) {
  std::string out;
  size_t count = 0;
  for (uint32_t index : wanted) {
    bool found =
        std::any_of(got.begin(), got.end(), [&](const Msr& m) { return m.index == index; });
    if (found) continue;
    if (count++ < 8) out += fmt::format("{}{:#x}", out.empty() ? "" : ", ", index);
  }
  if (count > 8) out += fmt::format(" and {} more", count - 8);
  return out;
}

// An IA32_TSC_DEADLINE of 0 is replaced by the TSC: Firecracker found guests that had just
// consumed a deadline interrupt when saved never got another timer interrupt after restore.
// The write only arms a timer when the LAPIC timer is in TSC-deadline mode.
void fix_zero_tsc_deadline(std::vector<Msr>& msrs) {
  auto tsc =
      std::find_if(msrs.begin(), msrs.end(), [](const Msr& m) { return m.index == kMsrTsc; });
  if (tsc == msrs.end()) return;
  for (Msr& m : msrs) {
    if (m.index == kMsrTscDeadline && m.value == 0) m.value = tsc->value;
  }
}

}  // namespace

Result<void> KvmVcpu::complete_pending_exit() {
  // KVM finishes the last exit's instruction at the start of KVM_RUN, and with immediate_exit
  // set returns EINTR before entering the guest.
  run_->immediate_exit = 1;
  int r = ::ioctl(fd_.get(), KVM_RUN, 0);
  int e = errno;
  run_->immediate_exit = 0;
  synced_regs_valid_ = sync_regs_;
  if (r < 0 && (e == EINTR || e == EAGAIN)) return {};
  if (r < 0)
    return err("KVM_RUN (completing the pending exit) on vCPU {}: {}", id_, errno_string(e));
  // A string I/O instruction wider than one exit's buffer needs the VMM again.
  return err("vCPU {} is inside an instruction that needs another {} exit; run it on before saving",
             id_, run_->exit_reason == KVM_EXIT_IO ? "I/O" : "VMM");
}

Result<void> KvmVcpu::kvmclock_ctrl() {
  // EINVAL: the guest has not enabled kvmclock, so there is no one to tell.
  if (::ioctl(fd_.get(), KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
    return err("KVM_KVMCLOCK_CTRL: {}", errno_string());
  return {};
}

Result<MpState> KvmVcpu::get_mp_state() {
  kvm_mp_state k{};
  if (::ioctl(fd_.get(), KVM_GET_MP_STATE, &k) < 0)
    return err("KVM_GET_MP_STATE: {}", errno_string());
  return static_cast<MpState>(k.mp_state);
}

Result<void> KvmVcpu::set_mp_state(MpState state) {
  kvm_mp_state k{static_cast<uint32_t>(state)};
  if (::ioctl(fd_.get(), KVM_SET_MP_STATE, &k) < 0)
    return err("KVM_SET_MP_STATE {}: {}", k.mp_state, errno_string());
  return {};
}

Result<std::vector<uint8_t>> KvmVcpu::get_xsave() {
  std::vector<uint8_t> area(std::max(kLegacyXsaveSize, caps_.xsave2_size));
  unsigned long request = caps_.xsave2_size ? kGetXsave2 : kGetXsave;
  if (::ioctl(fd_.get(), request, area.data()) < 0)
    return err("{}: {}", caps_.xsave2_size ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", errno_string());
  return area;
}

Result<void> KvmVcpu::set_xsave(std::span<const uint8_t> xsave) {
  // KVM_SET_XSAVE reads this VM's XSAVE2 size whatever was saved; a shorter area (saved where
  // fewer features were enabled) is padded with zeros, which XSTATE_BV marks as unused.
  const size_t size = std::max(kLegacyXsaveSize, caps_.xsave2_size);
  if (xsave.size() < kLegacyXsaveSize)
    return err("XSAVE area is {} bytes; KVM's is at least {}", xsave.size(), kLegacyXsaveSize);
  if (xsave.size() > size && std::any_of(xsave.begin() + static_cast<ptrdiff_t>(size), xsave.end(),
                                         [](uint8_t b) { return b != 0; }))
    return err(
        "XSAVE area holds {} bytes of state but this VM takes {}: it uses CPU features "
        "this host does not offer",
        xsave.size(), size);
  // The usual case (saved on this host, as a reset's checkpoint is): KVM reads it in place.
  std::vector<uint8_t> area;
  const void* arg = xsave.data();
  if (xsave.size() < size) {
    area.resize(size);
    std::memcpy(area.data(), xsave.data(), xsave.size());
    arg = area.data();
  }
  if (::ioctl(fd_.get(), kSetXsave, arg) < 0) return err("KVM_SET_XSAVE: {}", errno_string());
  return {};
}

Result<std::vector<Xcr>> KvmVcpu::get_xcrs() {
  kvm_xcrs k{};
  if (::ioctl(fd_.get(), KVM_GET_XCRS, &k) < 0) return err("KVM_GET_XCRS: {}", errno_string());
  std::vector<Xcr> out;
  for (uint32_t i = 0; i < std::min<uint32_t>(k.nr_xcrs, KVM_MAX_XCRS); ++i)
    out.push_back({k.xcrs[i].xcr, k.xcrs[i].value});
  return out;
}

Result<void> KvmVcpu::set_xcrs(std::span<const Xcr> xcrs) {
  if (xcrs.size() > KVM_MAX_XCRS)
    return err("{} XCRs given; KVM takes at most {}", xcrs.size(), KVM_MAX_XCRS);
  kvm_xcrs k{};
  k.nr_xcrs = static_cast<uint32_t>(xcrs.size());
  for (size_t i = 0; i < xcrs.size(); ++i) {
    k.xcrs[i].xcr = xcrs[i].index;
    k.xcrs[i].value = xcrs[i].value;
  }
  if (::ioctl(fd_.get(), KVM_SET_XCRS, &k) < 0) return err("KVM_SET_XCRS: {}", errno_string());
  return {};
}

Result<DebugRegs> KvmVcpu::get_debug_regs() {
  kvm_debugregs k{};
  if (::ioctl(fd_.get(), KVM_GET_DEBUGREGS, &k) < 0)
    return err("KVM_GET_DEBUGREGS: {}", errno_string());
  DebugRegs d{};
  std::copy(std::begin(k.db), std::end(k.db), d.db.begin());
  d.dr6 = k.dr6;
  d.dr7 = k.dr7;
  d.flags = k.flags;
  return d;
}

Result<void> KvmVcpu::set_debug_regs(const DebugRegs& d) {
  kvm_debugregs k{};
  std::copy(d.db.begin(), d.db.end(), std::begin(k.db));
  k.dr6 = d.dr6;
  k.dr7 = d.dr7;
  k.flags = d.flags;
  if (::ioctl(fd_.get(), KVM_SET_DEBUGREGS, &k) < 0)
    return err("KVM_SET_DEBUGREGS: {}", errno_string());
  return {};
}

Result<std::vector<uint8_t>> KvmVcpu::get_vcpu_events() {
  kvm_vcpu_events k{};
  if (run_->kvm_dirty_regs & KVM_SYNC_X86_EVENTS)
    k = run_->s.regs.events;  // written by reset_state(), not yet applied by a KVM_RUN
  else if (::ioctl(fd_.get(), KVM_GET_VCPU_EVENTS, &k) < 0)
    return err("KVM_GET_VCPU_EVENTS: {}", errno_string());
  const auto* bytes = reinterpret_cast<const uint8_t*>(&k);
  return std::vector<uint8_t>(bytes, bytes + sizeof(k));
}

Result<void> KvmVcpu::set_vcpu_events(std::span<const uint8_t> events) {
  kvm_vcpu_events k{};
  if (events.size() != sizeof(k))
    return err("vCPU events are {} bytes; KVM's struct kvm_vcpu_events is {}", events.size(),
               sizeof(k));
  std::memcpy(&k, events.data(), sizeof(k));
  if (::ioctl(fd_.get(), KVM_SET_VCPU_EVENTS, &k) < 0)
    return err("KVM_SET_VCPU_EVENTS: {}", errno_string());
  run_->kvm_dirty_regs &= ~static_cast<uint64_t>(KVM_SYNC_X86_EVENTS);
  return {};
}

Result<std::vector<CpuidEntry>> KvmVcpu::get_cpuid() {
  // KVM says E2BIG until the buffer holds every entry, then sets nent to their count.
  for (uint32_t n = 64; n <= 4096; n *= 2) {
    FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buf(n);
    buf.header()->nent = n;
    if (::ioctl(fd_.get(), kGetCpuid2, buf.header()) < 0) {
      if (errno == E2BIG) continue;
      if (!cpuid_.empty()) return cpuid_;
      return err("KVM_GET_CPUID2: {}", errno_string());
    }
    std::vector<CpuidEntry> out;
    for (uint32_t i = 0; i < std::min(buf.header()->nent, n); ++i) {
      const auto& e = buf.entries()[i];
      out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
    }
    return out;
  }
  return err("KVM_GET_CPUID2: too many entries");
}

Result<uint32_t> KvmVcpu::get_tsc_khz() {
  int khz = ::ioctl(fd_.get(), KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return err("KVM_GET_TSC_KHZ: {}", khz < 0 ? errno_string() : "no frequency");
  return static_cast<uint32_t>(khz);
}

Result<void> KvmVcpu::set_tsc_khz(uint32_t khz) {
  if (::ioctl(fd_.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0)
    return err("KVM_SET_TSC_KHZ {}: {}", khz, errno_string());
  return {};
}

Result<void> KvmVcpu::restore_tsc_khz(uint32_t khz) {
  IGN_ASSIGN_OR_RETURN(uint32_t current, get_tsc_khz());
  const uint64_t diff = current > khz ? current - khz : khz - current;
  if (diff * 1'000'000 <= uint64_t{khz} * kTscTolerancePpm) return {};
  if (!caps_.tsc_control)
    return err(
        "the snapshot's guest TSC runs at {} kHz and this host's at {} kHz, and this KVM "
        "cannot scale the TSC (no KVM_CAP_TSC_CONTROL): restore it on a host with the "
        "same TSC frequency",
        khz, current);
  return set_tsc_khz(khz);
}

Result<VcpuState> KvmVcpu::save_state(std::span<const uint32_t> msr_indexes) {
  IGN_TRY(complete_pending_exit());
  VcpuState s;
  // KVM_GET_MP_STATE may deliver pending INIT/SIPI into the LAPIC and registers, so it
  // comes first; the events last, as the other reads may change them.
  IGN_ASSIGN_OR_RETURN(s.mp_state, get_mp_state());
  IGN_ASSIGN_OR_RETURN(s.regs, get_regs());
  IGN_ASSIGN_OR_RETURN(s.sregs, get_sregs());
  IGN_ASSIGN_OR_RETURN(s.xsave, get_xsave());
  IGN_ASSIGN_OR_RETURN(s.xcrs, get_xcrs());
  IGN_ASSIGN_OR_RETURN(s.debug_regs, get_debug_regs());
  IGN_ASSIGN_OR_RETURN(s.lapic, get_lapic());
  if (auto khz = get_tsc_khz(); khz.ok()) s.tsc_khz = *khz;
  IGN_ASSIGN_OR_RETURN(s.cpuid, get_cpuid());
  IGN_ASSIGN_OR_RETURN(s.msrs, get_msrs(msr_indexes));
  if (s.msrs.size() != msr_indexes.size())
    return err("KVM cannot read MSR {} of vCPU {}", missing_msrs(msr_indexes, s.msrs), id_);
  fix_zero_tsc_deadline(s.msrs);
  IGN_ASSIGN_OR_RETURN(s.events, get_vcpu_events());
  return s;
}

Result<void> KvmVcpu::restore_state(const VcpuState& s) {
  // Each step's reason, from KVM's and Firecracker's notes: CPUID and MP state first (they
  // decide what the rest may hold); KVM_SET_REGS clears a pending exception, so it precedes
  // the events; sregs carry the APIC base the LAPIC needs; the LAPIC must be in TSC-deadline
  // mode before IA32_TSC_DEADLINE is written, and IA32_TSC before it; the events last.
  if (s.tsc_khz) IGN_TRY(restore_tsc_khz(*s.tsc_khz));
  if (!s.cpuid.empty()) IGN_TRY(set_cpuid(s.cpuid));
  IGN_TRY(set_mp_state(s.mp_state));
  IGN_TRY(set_regs_now(s.regs));
  IGN_TRY(set_sregs(s.sregs));
  IGN_TRY(set_xsave(s.xsave));
  IGN_TRY(set_xcrs(s.xcrs));
  IGN_TRY(set_debug_regs(s.debug_regs));
  IGN_TRY(set_lapic(s.lapic));
  std::vector<Msr> msrs = s.msrs;
  std::stable_partition(msrs.begin(), msrs.end(),
                        [](const Msr& m) { return m.index != kMsrTscDeadline; });
  IGN_TRY(set_msrs(msrs));
  IGN_TRY(set_vcpu_events(s.events));
  return kvmclock_ctrl();
}

Result<void> KvmVcpu::reset_state(const VcpuState& s) {
  // Registers, segment registers and pending events go through the kvm_run page when KVM
  // can take them there: KVM applies them at the next KVM_RUN, in that order, which is the
  // order restore_state() needs (regs before events), and saves three ioctls per reset.
  // Everything else is unchanged by the reset, so their order relative to the LAPIC and
  // MSRs (the APIC base in sregs) does not matter here.
  const bool via_run_page = sync_state_ && s.events.size() == sizeof(kvm_vcpu_events);
  IGN_TRY(set_mp_state(s.mp_state));
  if (!via_run_page) {
    IGN_TRY(set_regs_now(s.regs));
    IGN_TRY(set_sregs(s.sregs));
  }
  IGN_TRY(set_xsave(s.xsave));
  IGN_TRY(set_xcrs(s.xcrs));
  IGN_TRY(set_debug_regs(s.debug_regs));
  IGN_TRY(set_lapic(s.lapic));
  auto not_deadline = [](const Msr& m) { return m.index != kMsrTscDeadline; };
  if (std::is_partitioned(s.msrs.begin(), s.msrs.end(), not_deadline)) {
    IGN_TRY(set_msrs(s.msrs));  // the usual case: no copy on the reset path
  } else {
    std::vector<Msr> msrs = s.msrs;
    std::stable_partition(msrs.begin(), msrs.end(), not_deadline);
    IGN_TRY(set_msrs(msrs));
  }
  if (!via_run_page) return set_vcpu_events(s.events);
  IGN_TRY(set_regs(s.regs));  // the kvm_run page, with sync_state_
  run_->s.regs.sregs = to_kvm_sregs(s.sregs);
  std::memcpy(&run_->s.regs.events, s.events.data(), sizeof(kvm_vcpu_events));
  run_->kvm_dirty_regs |= KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
  return {};
}

}  // namespace ignition::hv::kvm
