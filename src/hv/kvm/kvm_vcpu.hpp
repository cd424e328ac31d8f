// A KVM vCPU: its fd and the shared kvm_run page. Registers travel through
// KVM_CAP_SYNC_REGS (the kvm_run page) when the host has it, saving two ioctls per access.
#pragma once

#include <linux/kvm.h>

#include "base/fd.hpp"
#include "hv/hypervisor.hpp"

namespace ignition::hv::kvm {

class KvmVcpu final : public Vcpu {
 public:
  static Result<std::unique_ptr<KvmVcpu>> create(int vm_fd, uint32_t id, size_t run_size,
                                                 bool sync_regs);
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

 private:
  KvmVcpu(UniqueFd fd, uint32_t id, kvm_run* run, size_t run_size, bool sync_regs)
      : fd_(std::move(fd)), id_(id), run_(run), run_size_(run_size), sync_regs_(sync_regs) {}
  Exit decode_exit();
  Fatal describe_internal_error();

  UniqueFd fd_;
  uint32_t id_;
  kvm_run* run_;
  size_t run_size_;
  bool sync_regs_;
  // True when run_->s.regs holds the current registers (after an exit, or a set_regs
  // that KVM will apply on the next entry).
  bool synced_regs_valid_ = false;
};

}  // namespace ignition::hv::kvm
