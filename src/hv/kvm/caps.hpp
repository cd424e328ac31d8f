// What the host's KVM can do, read once from /dev/kvm and handed to each VM and vCPU.
#pragma once

#include <cstddef>
#include <cstdint>

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
  // Dirty ring: the KVM_ENABLE_CAP to use (KVM_CAP_DIRTY_LOG_RING_ACQ_REL when the host has
  // it, else KVM_CAP_DIRTY_LOG_RING) and entries per vCPU; 0 entries means the bitmap. Per
  // VM, 0 also when enabling the ring failed.
  uint32_t dirty_ring_cap = 0;
  uint32_t dirty_ring_entries = 0;
};

}  // namespace ignition::hv::kvm
