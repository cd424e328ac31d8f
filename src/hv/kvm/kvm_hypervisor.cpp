// /dev/kvm: the entry point of the KVM backend.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "hv/hypervisor.hpp"
#include "hv/kvm/flex_arrays.hpp"
#include "hv/kvm/kvm_vm.hpp"

namespace ignition::hv {

namespace kvm {
namespace {

class KvmHypervisor final : public Hypervisor {
 public:
  KvmHypervisor(UniqueFd fd, KvmCaps caps) : fd_(std::move(fd)), caps_(caps) {}

  Result<std::unique_ptr<Vm>> create_vm() override {
    IGN_ASSIGN_OR_RETURN(auto vm, KvmVm::create(fd_.get(), caps_));
    return std::unique_ptr<Vm>(std::move(vm));
  }

  Result<std::vector<CpuidEntry>> supported_cpuid() override {
    // KVM says E2BIG until the buffer is large enough.
    for (uint32_t n = 64; n <= 4096; n *= 2) {
      FlexBuffer<CpuidHeader, kvm_cpuid_entry2> buf(n);
      buf.header()->nent = n;
      if (::ioctl(fd_.get(), kGetSupportedCpuid, buf.header()) < 0) {
        if (errno == E2BIG) continue;
        return err("KVM_GET_SUPPORTED_CPUID: {}", errno_string());
      }
      std::vector<CpuidEntry> out;
      for (uint32_t i = 0; i < buf.header()->nent; ++i) {
        const auto& e = buf.entries()[i];
        out.push_back({e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx});
      }
      return out;
    }
    return err("KVM_GET_SUPPORTED_CPUID: too many entries");
  }

  Result<std::vector<uint32_t>> msr_index_list() override {
    // The first call, with room for none, says how many there are (E2BIG).
    MsrListHeader probe{};
    if (::ioctl(fd_.get(), kGetMsrIndexList, &probe) < 0 && errno != E2BIG)
      return err("KVM_GET_MSR_INDEX_LIST: {}", errno_string());
    FlexBuffer<MsrListHeader, uint32_t> buf(probe.nmsrs);
    buf.header()->nmsrs = probe.nmsrs;
    if (::ioctl(fd_.get(), kGetMsrIndexList, buf.header()) < 0)
      return err("KVM_GET_MSR_INDEX_LIST: {}", errno_string());
    return std::vector<uint32_t>(buf.entries(), buf.entries() + buf.header()->nmsrs);
  }

  std::string_view state_tag() const override { return "x86_64-kvm"; }

 private:
  UniqueFd fd_;
  KvmCaps caps_;
};

bool has_cap(int fd, int cap) {
  return ::ioctl(fd, KVM_CHECK_EXTENSION, cap) > 0;
}

}  // namespace
}  // namespace kvm

Result<std::unique_ptr<Hypervisor>> open_hypervisor(const HypervisorOptions& options) {
  UniqueFd fd(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return err("cannot open /dev/kvm: {}", errno_string());
  int version = ::ioctl(fd.get(), KVM_GET_API_VERSION, 0);
  if (version != KVM_API_VERSION)
    return err("/dev/kvm speaks API version {}, ignition needs {}", version, KVM_API_VERSION);
  for (int cap : {KVM_CAP_IRQCHIP, KVM_CAP_IOEVENTFD, KVM_CAP_IRQFD, KVM_CAP_USER_MEMORY,
                  KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_PIT2}) {
    if (!kvm::has_cap(fd.get(), cap)) return err("/dev/kvm lacks required capability {}", cap);
  }
  kvm::KvmCaps caps;
  int mmap_size = ::ioctl(fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
  if (mmap_size <= 0) return err("KVM_GET_VCPU_MMAP_SIZE: {}", errno_string());
  caps.vcpu_mmap_size = static_cast<size_t>(mmap_size);
  int sync = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
  caps.sync_regs = sync > 0 && (sync & KVM_SYNC_X86_REGS);
  constexpr int kSyncState = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
  caps.sync_state = sync > 0 && (sync & kSyncState) == kSyncState;
  caps.exit_on_emulation_failure = kvm::has_cap(fd.get(), KVM_CAP_EXIT_ON_EMULATION_FAILURE);
  caps.tsc_control = kvm::has_cap(fd.get(), KVM_CAP_TSC_CONTROL);
  // The dirty ring reports each written page once, straight from the vCPU that wrote it,
  // so a harvest costs what was written rather than a walk of every slot's bitmap.
  uint32_t entries = options.dirty_ring_entries;
  if (entries != 0 && (entries & (entries - 1)) != 0)
    return err("dirty ring size {} is not a power of two", entries);
  for (int cap : {KVM_CAP_DIRTY_LOG_RING_ACQ_REL, KVM_CAP_DIRTY_LOG_RING}) {
    int max_bytes = ::ioctl(fd.get(), KVM_CHECK_EXTENSION, cap);
    if (max_bytes <= 0 || entries == 0) continue;
    caps.dirty_ring_cap = static_cast<uint32_t>(cap);
    caps.dirty_ring_entries =
        std::min<uint32_t>(entries, static_cast<uint32_t>(max_bytes) / sizeof(kvm_dirty_gfn));
    break;
  }
  return std::unique_ptr<Hypervisor>(new kvm::KvmHypervisor(std::move(fd), caps));
}

}  // namespace ignition::hv
