// What the host's KVM can do, read once from /dev/kvm and handed to each VM and vCPU.
#pragma once

#include <cstddef>

namespace ignition::hv::kvm {

struct KvmCaps {
  size_t vcpu_mmap_size = 0;
  bool sync_regs = false;
  bool sync_state = false;  // KVM_SYNC_X86_REGS | SREGS | EVENTS
  bool exit_on_emulation_failure = false;
  // KVM_CAP_TSC_CONTROL: KVM_SET_TSC_KHZ can give a guest another TSC frequency.
  bool tsc_control = false;
  // Bytes of the XSAVE area KVM_GET_XSAVE2 fills (KVM_CAP_XSAVE2, asked per VM); 0 when
  // the host only has the 4 KiB KVM_GET_XSAVE.
  size_t xsave2_size = 0;
};

}  // namespace ignition::hv::kvm
