// A KVM virtual machine: memory slots, the in-kernel irqchip and PIT, irqfd/ioeventfd
// wiring, dirty logging, the guest clock, and their snapshot state (kvm_vm_state.cpp).
#pragma once

#include "base/fd.hpp"
#include "hv/hypervisor.hpp"
#include "hv/kvm/caps.hpp"
#include "hv/kvm/dirty_log.hpp"

namespace ignition::hv::kvm {

class KvmVm final : public Vm {
 public:
  static Result<std::unique_ptr<KvmVm>> create(int kvm_fd, const KvmCaps& caps);

  Result<void> map_memory(uint32_t slot, uint64_t gpa, uint64_t size, void* host, bool log_dirty,
                          bool read_only) override;
  Result<void> unmap_memory(uint32_t slot) override;
  Result<void> create_irqchip() override;
  Result<void> set_irq_line(uint32_t gsi, bool level) override;
  Result<void> register_irqfd(int eventfd, uint32_t gsi) override;
  Result<void> register_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                                  std::optional<uint64_t> datamatch) override;
  Result<void> collect_dirty(DirtySink sink) override;
  DirtyLogMode dirty_log_mode() const override { return dirty_log_->mode(); }
  Result<uint64_t> get_clock() override;
  Result<void> set_clock(uint64_t ns) override;
  Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id) override;

  Result<VmState> save_state() override;
  using Vm::restore_state;
  Result<void> restore_state(const VmState& state, ClockRestore clock) override;
  Result<ClockState> get_clock_state() override;
  Result<void> set_clock_state(const ClockState& clock, ClockRestore mode) override;

 private:
  KvmVm(UniqueFd fd, const KvmCaps& caps, std::shared_ptr<DirtyLog> dirty_log)
      : fd_(std::move(fd)), caps_(caps), dirty_log_(std::move(dirty_log)) {}
  Result<std::vector<uint8_t>> get_irqchip(uint32_t chip_id);
  Result<void> set_irqchip(uint32_t chip_id, const std::vector<uint8_t>& chip);

  UniqueFd fd_;
  KvmCaps caps_;
  std::shared_ptr<DirtyLog> dirty_log_;
};

}  // namespace ignition::hv::kvm
