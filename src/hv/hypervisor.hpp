// The hypervisor seam: everything ignition needs from a hypervisor, in three
// interfaces. KVM (src/hv/kvm/) is the one backend today; another (e.g. Apple's
// Hypervisor.framework) implements the same three.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "base/result.hpp"
#include "hv/cpu_state.hpp"
#include "hv/vm_state.hpp"

namespace ignition::hv {

// ---- vCPU exits: what a run returned, as a closed set of value types. ----

// Port I/O. `data` holds count accesses of `size` bytes each (count > 1 for rep ins/outs).
struct IoOut {
  uint16_t port;
  uint8_t size;  // 1, 2 or 4
  std::span<const uint8_t> data;
};
struct IoIn {
  uint16_t port;
  uint8_t size;
  std::span<uint8_t> data;  // fill in; the value reaches the guest on the next run
};
struct MmioWrite {
  uint64_t addr;
  std::span<const uint8_t> data;
};
struct MmioRead {
  uint64_t addr;
  std::span<uint8_t> data;  // fill in
};
struct Halted {};       // HLT with the in-kernel irqchip disabled, or guest stuck
struct Interrupted {};  // run() was kicked out (signal or request_exit()); not a guest event
struct SystemEvent {    // guest asked for shutdown or reset through the hypervisor
  enum class Kind { Shutdown, Reset, Crash } kind;
};
struct TripleFault {};
// The VM cannot go on: emulation failure, failed entry, unknown exit. `what` says
// which, with the guest RIP and instruction bytes when the hypervisor has them.
struct Fatal {
  std::string what;
};

using Exit = std::variant<IoOut, IoIn, MmioWrite, MmioRead, Halted, Interrupted, SystemEvent,
                          TripleFault, Fatal>;

// ---- dirty pages ----

// 64 pages of one memory slot the guest wrote: bit i of `mask` is page `first_page + i`
// of the slot (first_page is a multiple of 64; no bit lies past the end of the slot).
struct DirtyPages {
  uint32_t slot;
  uint64_t first_page;
  uint64_t mask;
};

class DirtySink;
template <typename Fn>
concept DirtyPagesFn =
    std::invocable<Fn&, const DirtyPages&> && !std::same_as<std::decay_t<Fn>, DirtySink>;

// Where Vm::collect_dirty() reports: a reference to any callable taking DirtyPages, kept
// as a pointer pair so the harvest path never allocates (a std::function may). The callable
// must outlive the call, which it does when passed inline.
class DirtySink {
 public:
  template <DirtyPagesFn Fn>
  DirtySink(Fn&& fn)  // NOLINT: implicit, so a lambda can be passed directly
      : fn_(const_cast<void*>(static_cast<const void*>(&fn))),
        call_([](void* f, const DirtyPages& p) {
          (*static_cast<std::remove_reference_t<Fn>*>(f))(p);
        }) {}
  void operator()(const DirtyPages& pages) const { call_(fn_, pages); }

 private:
  void* fn_;
  void (*call_)(void*, const DirtyPages&);
};

// How a Vm learns which pages the guest wrote.
enum class DirtyLogMode {
  Bitmap,  // one bitmap per slot, read and cleared by the VMM (KVM_GET_DIRTY_LOG)
  Ring,    // each vCPU appends the pages it writes to a ring the VMM drains (KVM dirty ring)
};

// ---- the three interfaces ----

class Vcpu {
 public:
  virtual ~Vcpu() = default;
  virtual uint32_t id() const = 0;

  // Enters the guest until the next exit the VMM must handle.
  virtual Result<Exit> run() = 0;
  // Makes the current or next run() return Interrupted. Safe from any thread when
  // followed by a signal to the vCPU's thread (see VcpuThread).
  virtual void request_exit() = 0;
  virtual void clear_exit_request() = 0;

  virtual Result<Regs> get_regs() = 0;
  virtual Result<void> set_regs(const Regs& regs) = 0;
  virtual Result<Sregs> get_sregs() = 0;
  virtual Result<void> set_sregs(const Sregs& sregs) = 0;
  virtual Result<Fpu> get_fpu() = 0;
  virtual Result<void> set_fpu(const Fpu& fpu) = 0;
  virtual Result<void> set_msrs(std::span<const Msr> msrs) = 0;
  // Reads the given MSR indexes; returns those the hypervisor knows.
  virtual Result<std::vector<Msr>> get_msrs(std::span<const uint32_t> indexes) = 0;
  virtual Result<void> set_cpuid(std::span<const CpuidEntry> entries) = 0;
  virtual Result<LapicState> get_lapic() = 0;
  virtual Result<void> set_lapic(const LapicState& lapic) = 0;
  // Guest-virtual to guest-physical, through the guest's current page tables.
  virtual Result<uint64_t> translate(uint64_t gva) = 0;

  // ---- snapshot state ----
  // These have defaults that fail with "not supported", so a backend (or a test double)
  // can grow them one at a time. Call them only while the vCPU is not running.

  // The whole vCPU, read in the order the hypervisor needs (MP state first, pending events
  // last), after completing the exit last returned by run() so that no I/O is half done.
  // `msr_indexes` is what to save (x86_64::snapshot_msr_list); every one must be readable.
  virtual Result<VcpuState> save_state(std::span<const uint32_t> msr_indexes);
  // Loads a saved vCPU into a fresh vCPU, or into the one it was saved from to roll it back
  // (KVM refuses a different CPUID once a vCPU has run), in dependency order:
  // CPUID, MP state, regs, sregs (APIC base), XSAVE, XCRs, debug registers, LAPIC, MSRs
  // (TSC before TSC deadline), pending events; then tells a kvmclock guest it was paused.
  // Fails if the saved TSC frequency differs and the hypervisor cannot scale the TSC.
  virtual Result<void> restore_state(const VcpuState& state);
  // Rolls this vCPU back to a state it saved itself (an in-process reset): the same as
  // restore_state() minus what cannot have changed since (CPUID, TSC frequency) and the
  // paused-guest notice, in as few hypervisor calls as the backend can manage.
  virtual Result<void> reset_state(const VcpuState& state) { return restore_state(state); }

  // Completes the exit last returned by run() without executing guest code: the value of
  // an IoIn/MmioRead reaches the guest and RIP moves past the instruction.
  virtual Result<void> complete_pending_exit();
  // Tells a guest using kvmclock that it was paused (so its soft-lockup watchdog does not
  // fire on resume). Succeeds, doing nothing, when the guest does not use kvmclock.
  virtual Result<void> kvmclock_ctrl();

  virtual Result<MpState> get_mp_state();
  virtual Result<void> set_mp_state(MpState state);
  virtual Result<std::vector<uint8_t>> get_xsave();
  virtual Result<void> set_xsave(std::span<const uint8_t> xsave);
  virtual Result<std::vector<Xcr>> get_xcrs();
  virtual Result<void> set_xcrs(std::span<const Xcr> xcrs);
  virtual Result<DebugRegs> get_debug_regs();
  virtual Result<void> set_debug_regs(const DebugRegs& regs);
  virtual Result<std::vector<uint8_t>> get_vcpu_events();
  virtual Result<void> set_vcpu_events(std::span<const uint8_t> events);
  // The CPUID table in effect (what set_cpuid() last gave, as the hypervisor keeps it).
  virtual Result<std::vector<CpuidEntry>> get_cpuid();
  virtual Result<uint32_t> get_tsc_khz();
  virtual Result<void> set_tsc_khz(uint32_t khz);
};

class Vm {
 public:
  virtual ~Vm() = default;

  // Maps `size` bytes at host address `host` to guest-physical `gpa` as slot `slot`.
  // `read_only`: guest writes there exit as MMIO writes instead (a read-only pmem device).
  virtual Result<void> map_memory(uint32_t slot, uint64_t gpa, uint64_t size, void* host,
                                  bool log_dirty, bool read_only = false) = 0;
  virtual Result<void> unmap_memory(uint32_t slot) = 0;

  // In-kernel interrupt controllers (PIC, IOAPIC, LAPIC) and PIT.
  virtual Result<void> create_irqchip() = 0;
  virtual Result<void> set_irq_line(uint32_t gsi, bool level) = 0;
  // An eventfd that raises `gsi` when written (used by devices off the vCPU threads).
  virtual Result<void> register_irqfd(int eventfd, uint32_t gsi) = 0;
  // An eventfd the hypervisor signals when the guest writes `addr` (MMIO) or port.
  virtual Result<void> register_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                                          std::optional<uint64_t> datamatch) = 0;

  // Reports every page the guest wrote, in slots mapped with log_dirty, since the previous
  // call (or since the slot started logging), and re-arms the log for those pages. A page
  // may come in more than one DirtyPages. Allocates nothing; call it with the vCPUs paused
  // for a consistent cut (pages written meanwhile are reported now or by the next call).
  virtual Result<void> collect_dirty(DirtySink sink) = 0;
  virtual DirtyLogMode dirty_log_mode() const = 0;

  // Guest clock (kvmclock) in ns, and the TSC frequency guests are given.
  virtual Result<uint64_t> get_clock() = 0;
  virtual Result<void> set_clock(uint64_t ns) = 0;

  virtual Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id) = 0;

  // ---- snapshot state (defaults fail with "not supported", as for Vcpu) ----
  // Irqchip, PIT and clock. Needs create_irqchip(); call with every vCPU stopped.
  virtual Result<VmState> save_state();
  // Loads saved chips and clock into this VM. The irqchip must exist; restore the vCPUs
  // first (Firecracker's order).
  virtual Result<void> restore_state(const VmState& state, ClockRestore clock);
  Result<void> restore_state(const VmState& state) {
    return restore_state(state, ClockRestore::Continue);
  }
  virtual Result<ClockState> get_clock_state();
  virtual Result<void> set_clock_state(const ClockState& clock, ClockRestore mode);
};

class Hypervisor {
 public:
  virtual ~Hypervisor() = default;
  virtual Result<std::unique_ptr<Vm>> create_vm() = 0;
  // What the hypervisor can virtualise: the base of the guest CPUID template.
  virtual Result<std::vector<CpuidEntry>> supported_cpuid() = 0;
  // MSR indexes the hypervisor can save and restore.
  virtual Result<std::vector<uint32_t>> msr_index_list() = 0;
  // Names the layout of the opaque parts of VcpuState and VmState (e.g. "x86_64-kvm"):
  // a snapshot can only be restored by a backend with the same tag.
  virtual std::string_view state_tag() const = 0;
};

struct HypervisorOptions {
  // Entries in each vCPU's dirty ring (a power of two; 4096 = 64 KiB of kernel memory per
  // vCPU with KVM), used when the backend has rings; 0 means the bitmap. 0 by default: this
  // host's KVM (kvm-pvm) overflows the ring on dense guest ring-0 writes and loses pages.
  uint32_t dirty_ring_entries = 0;
};

// The backend for this host (KVM on Linux): opens /dev/kvm and checks the API version.
Result<std::unique_ptr<Hypervisor>> open_hypervisor(const HypervisorOptions& options);
inline Result<std::unique_ptr<Hypervisor>> open_hypervisor() {
  return open_hypervisor(HypervisorOptions{});
}

}  // namespace ignition::hv
