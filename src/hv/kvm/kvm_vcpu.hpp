// A KVM vCPU: its fd and the shared kvm_run page. Registers travel through
// KVM_CAP_SYNC_REGS (the kvm_run page) when the host has it, saving two ioctls per access.
// The snapshot-state calls live in kvm_vcpu_state.cpp.
#pragma once

#include <linux/kvm.h>

#include "base/fd.hpp"
#include "hv/hypervisor.hpp"
#include "hv/kvm/caps.hpp"
#include "hv/kvm/dirty_log.hpp"

namespace ignition::hv::kvm {

class KvmVcpu final : public Vcpu {
 public:
  static Result<std::unique_ptr<KvmVcpu>> create(int vm_fd, uint32_t id, const KvmCaps& caps,
                                                 std::shared_ptr<DirtyLog> dirty_log);
  ~KvmVcpu() override;

  uint32_t id() const override { return id_; }
  Result<Exit> run() override;
  void request_exit() override { run_->immediate_exit = 1; }
  void clear_exit_request() override { run_->immediate_exit = 0; }

  Result<Regs> get_regs() override;
  Result<void> set_regs(const Regs& regs) override;
  Result<Sregs> get_sregs() override;
  Result<void> set_sregs(const Sregs& sregs) override;
  Result<Fpu> get_fpu() override;
  Result<void> set_fpu(const Fpu& fpu) override;
  Result<void> set_msrs(std::span<const Msr> msrs) override;
  Result<std::vector<Msr>> get_msrs(std::span<const uint32_t> indexes) override;
  Result<void> set_cpuid(std::span<const CpuidEntry> entries) override;
  Result<LapicState> get_lapic() override;
  Result<void> set_lapic(const LapicState& lapic) override;
  Result<uint64_t> translate(uint64_t gva) override;

  Result<VcpuState> save_state(std::span<const uint32_t> msr_indexes) override;
  Result<void> restore_state(const VcpuState& state) override;
  Result<void> reset_state(const VcpuState& state) override;
  Result<void> complete_pending_exit() override;
  Result<void> kvmclock_ctrl() override;
  Result<MpState> get_mp_state() override;
  Result<void> set_mp_state(MpState state) override;
  Result<std::vector<uint8_t>> get_xsave() override;
  Result<void> set_xsave(std::span<const uint8_t> xsave) override;
  Result<std::vector<Xcr>> get_xcrs() override;
  Result<void> set_xcrs(std::span<const Xcr> xcrs) override;
  Result<DebugRegs> get_debug_regs() override;
  Result<void> set_debug_regs(const DebugRegs& regs) override;
  Result<std::vector<uint8_t>> get_vcpu_events() override;
  Result<void> set_vcpu_events(std::span<const uint8_t> events) override;
  Result<std::vector<CpuidEntry>> get_cpuid() override;
  Result<uint32_t> get_tsc_khz() override;
  Result<void> set_tsc_khz(uint32_t khz) override;

 private:
  KvmVcpu(UniqueFd fd, uint32_t id, kvm_run* run, const KvmCaps& caps)
      : fd_(std::move(fd)),
        id_(id),
        run_(run),
        run_size_(caps.vcpu_mmap_size),
        sync_regs_(caps.sync_regs),
        sync_state_(caps.sync_state),
        caps_(caps) {}
  Exit decode_exit();
  Fatal describe_internal_error();
  // KVM_SET_REGS now, bypassing the kvm_run page: restore_state() must set registers
  // before the pending events, which a deferred sync-regs write would clear again.
  Result<void> set_regs_now(const Regs& regs);
  static kvm_sregs to_kvm_sregs(const Sregs& s);
  // Restores a saved TSC frequency, or fails clearly when the host cannot.
  Result<void> restore_tsc_khz(uint32_t khz);

  UniqueFd fd_;
  uint32_t id_;
  kvm_run* run_;
  size_t run_size_;
  bool sync_regs_;
  bool sync_state_;  // regs, sregs and events can all go through the kvm_run page
  KvmCaps caps_;
  // What set_cpuid() last loaded: get_cpuid()'s answer if KVM_GET_CPUID2 is unavailable.
  std::vector<CpuidEntry> cpuid_;
  // True when run_->s.regs holds the current registers (after an exit, or a set_regs
  // that KVM will apply on the next entry).
  bool synced_regs_valid_ = false;
  // This vCPU's dirty ring (null with the bitmap), registered with the VM's log.
  std::shared_ptr<DirtyLog> dirty_log_;
  std::unique_ptr<DirtyRing> dirty_ring_;
};

}  // namespace ignition::hv::kvm
