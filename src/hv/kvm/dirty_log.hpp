// A VM's log of the pages its guest writes: KVM's per-vCPU dirty rings when the VM has them,
// else KVM_GET_DIRTY_LOG's per-slot bitmaps, behind one collect() that works either way.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "hv/hypervisor.hpp"

namespace ignition::hv::kvm {

// One vCPU's dirty ring, mapped from its fd. `fetch` counts the entries the VMM has taken.
class DirtyRing {
 public:
  static Result<std::unique_ptr<DirtyRing>> map(int vcpu_fd, uint32_t entries);
  ~DirtyRing();
  DirtyRing(const DirtyRing&) = delete;
  DirtyRing& operator=(const DirtyRing&) = delete;

 private:
  friend class DirtyLog;
  DirtyRing(kvm_dirty_gfn* gfns, uint32_t entries) : gfns_(gfns), entries_(entries) {}
  kvm_dirty_gfn* gfns_;
  uint32_t entries_;  // a power of two
  uint32_t fetch_ = 0;
};

// Shared by the VM and its vCPUs (a vCPU whose ring fills drains it from its own thread),
// so that pages taken from a ring early wait here for the next collect().
class DirtyLog {
 public:
  // `vm_fd` is duplicated; `ring_entries` 0 means the bitmap.
  static Result<std::shared_ptr<DirtyLog>> create(int vm_fd, uint32_t ring_entries);

  DirtyLogMode mode() const { return ring_entries_ ? DirtyLogMode::Ring : DirtyLogMode::Bitmap; }
  uint32_t ring_entries() const { return ring_entries_; }

  // A slot starts (pages > 0) or stops (0) logging. Allocates its bitmap, so the harvest
  // path need not.
  void track_slot(uint32_t slot, uint64_t pages);
  void add_ring(DirtyRing* ring);
  void remove_ring(DirtyRing* ring);

  // KVM_EXIT_DIRTY_RING_FULL on the vCPU owning `ring`: moves its entries into the slot
  // bitmaps and gives them back to KVM, so the vCPU can go on. Returns how many it took.
  Result<uint32_t> drain(DirtyRing& ring);
  // Every page logged since the last call, then clears the log (see Vm::collect_dirty).
  Result<void> collect(DirtySink sink);

 private:
  struct Slot {
    uint64_t pages = 0;
    std::vector<uint64_t> bits;  // pages taken from rings (or read from KVM), not yet reported
  };
  DirtyLog(UniqueFd vm_fd, uint32_t ring_entries)
      : vm_fd_(std::move(vm_fd)), ring_entries_(ring_entries) {}
  // Moves the ring's published entries into slots_; returns how many. Needs mu_.
  uint32_t take(DirtyRing& ring);
  Result<void> reset_rings();
  Result<void> read_bitmaps();

  UniqueFd vm_fd_;
  uint32_t ring_entries_;
  // Guards everything below: vCPU threads drain their rings while the VMM collects.
  std::mutex mu_;
  std::vector<Slot> slots_;  // indexed by slot id
  std::vector<DirtyRing*> rings_;
};

}  // namespace ignition::hv::kvm
