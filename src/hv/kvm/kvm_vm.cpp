#include "hv/kvm/kvm_vm.hpp"

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include "hv/kvm/kvm_vcpu.hpp"

namespace ignition::hv::kvm {

namespace {
// Intel VMX needs three pages for its real-mode TSS and one for the identity map, somewhere
// the guest never uses: just below the BIOS area at the top of the 32-bit space.
constexpr uint64_t kTssAddr = 0xfffbd000;
constexpr uint64_t kIdentityMapAddr = 0xfffbc000;
}  // namespace

Result<std::unique_ptr<KvmVm>> KvmVm::create(int kvm_fd, const KvmCaps& caps) {
  UniqueFd fd(::ioctl(kvm_fd, KVM_CREATE_VM, 0));
  if (!fd.valid()) return err("KVM_CREATE_VM: {}", errno_string());
  if (::ioctl(fd.get(), KVM_SET_TSS_ADDR, kTssAddr) < 0)
    return err("KVM_SET_TSS_ADDR: {}", errno_string());
  uint64_t identity = kIdentityMapAddr;
  if (::ioctl(fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &identity) < 0)
    return err("KVM_SET_IDENTITY_MAP_ADDR: {}", errno_string());
  if (caps.exit_on_emulation_failure) {
    // Emulation failures then carry the instruction bytes, for a useful error message.
    kvm_enable_cap cap{};
    cap.cap = KVM_CAP_EXIT_ON_EMULATION_FAILURE;
    cap.args[0] = 1;
    if (::ioctl(fd.get(), KVM_ENABLE_CAP, &cap) < 0)
      return err("KVM_ENABLE_CAP(EXIT_ON_EMULATION_FAILURE): {}", errno_string());
  }
  KvmCaps vm_caps = caps;
  // Asked of the VM, not /dev/kvm: the size covers the XSAVE features this VM may use.
  int xsave2 = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  vm_caps.xsave2_size = xsave2 > 0 ? static_cast<size_t>(xsave2) : 0;
  if (vm_caps.dirty_ring_entries) {
    // Only possible before the first vCPU, and free until a slot logs dirty pages; dirty
    // tracking may be switched on long after (at a checkpoint), so it is done for every VM.
    kvm_enable_cap cap{};
    cap.cap = vm_caps.dirty_ring_cap;
    cap.args[0] = uint64_t{vm_caps.dirty_ring_entries} * sizeof(kvm_dirty_gfn);
    if (::ioctl(fd.get(), KVM_ENABLE_CAP, &cap) < 0) vm_caps.dirty_ring_entries = 0;
  }
  IGN_ASSIGN_OR_RETURN(auto dirty_log, DirtyLog::create(fd.get(), vm_caps.dirty_ring_entries));
  return std::unique_ptr<KvmVm>(new KvmVm(std::move(fd), vm_caps, std::move(dirty_log)));
}

Result<void> KvmVm::map_memory(uint32_t slot, uint64_t gpa, uint64_t size, void* host,
                               bool log_dirty, bool read_only) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = (log_dirty ? KVM_MEM_LOG_DIRTY_PAGES : 0) | (read_only ? KVM_MEM_READONLY : 0);
  region.guest_phys_addr = gpa;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return err("KVM_SET_USER_MEMORY_REGION slot {} at {:#x}: {}", slot, gpa, errno_string());
  dirty_log_->track_slot(slot, log_dirty ? size / 4096 : 0);
  return {};
}

Result<void> KvmVm::unmap_memory(uint32_t slot) {
  kvm_userspace_memory_region region{};
  region.slot = slot;  // size 0 deletes the slot
  if (::ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return err("deleting memory slot {}: {}", slot, errno_string());
  dirty_log_->track_slot(slot, 0);
  return {};
}

Result<void> KvmVm::create_irqchip() {
  if (::ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0) < 0)
    return err("KVM_CREATE_IRQCHIP: {}", errno_string());
  kvm_pit_config pit{};
  pit.flags = KVM_PIT_SPEAKER_DUMMY;  // port 0x61 reads without a real speaker
  if (::ioctl(fd_.get(), KVM_CREATE_PIT2, &pit) < 0)
    return err("KVM_CREATE_PIT2: {}", errno_string());
  return {};
}

Result<void> KvmVm::set_irq_line(uint32_t gsi, bool level) {
  kvm_irq_level irq{};
  irq.irq = gsi;
  irq.level = level ? 1 : 0;
  if (::ioctl(fd_.get(), KVM_IRQ_LINE, &irq) < 0)
    return err("KVM_IRQ_LINE {}: {}", gsi, errno_string());
  return {};
}

Result<void> KvmVm::register_irqfd(int eventfd, uint32_t gsi) {
  kvm_irqfd irqfd{};
  irqfd.fd = static_cast<uint32_t>(eventfd);
  irqfd.gsi = gsi;
  if (::ioctl(fd_.get(), KVM_IRQFD, &irqfd) < 0)
    return err("KVM_IRQFD gsi {}: {}", gsi, errno_string());
  return {};
}

Result<void> KvmVm::register_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                                       std::optional<uint64_t> datamatch) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = len;
  io.fd = eventfd;
  if (pio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
  if (datamatch) {
    io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    io.datamatch = *datamatch;
  }
  if (::ioctl(fd_.get(), KVM_IOEVENTFD, &io) < 0)
    return err("KVM_IOEVENTFD at {:#x}: {}", addr, errno_string());
  return {};
}

Result<void> KvmVm::collect_dirty(DirtySink sink) {
  return dirty_log_->collect(sink);
}

Result<uint64_t> KvmVm::get_clock() {
  kvm_clock_data clock{};
  if (::ioctl(fd_.get(), KVM_GET_CLOCK, &clock) < 0)
    return err("KVM_GET_CLOCK: {}", errno_string());
  return clock.clock;
}

Result<void> KvmVm::set_clock(uint64_t ns) {
  kvm_clock_data clock{};
  clock.clock = ns;
  if (::ioctl(fd_.get(), KVM_SET_CLOCK, &clock) < 0)
    return err("KVM_SET_CLOCK: {}", errno_string());
  return {};
}

Result<std::unique_ptr<Vcpu>> KvmVm::create_vcpu(uint32_t id) {
  IGN_ASSIGN_OR_RETURN(auto vcpu, KvmVcpu::create(fd_.get(), id, caps_, dirty_log_));
  return std::unique_ptr<Vcpu>(std::move(vcpu));
}

}  // namespace ignition::hv::kvm
