// The dirty log: KVM dirty rings (Documentation/virt/kvm/api.rst, KVM_CAP_DIRTY_LOG_RING) or
// KVM_GET_DIRTY_LOG bitmaps, gathered into per-slot bitmaps and reported 64 pages at a time.
#include "hv/kvm/dirty_log.hpp"

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>

namespace ignition::hv::kvm {

namespace {
constexpr uint64_t kPageSize = 4096;
}  // namespace

Result<std::unique_ptr<DirtyRing>> DirtyRing::map(int vcpu_fd, uint32_t entries) {
  void* p = ::mmap(nullptr, entries * sizeof(kvm_dirty_gfn), PROT_READ | PROT_WRITE, MAP_SHARED,
                   vcpu_fd, KVM_DIRTY_LOG_PAGE_OFFSET * kPageSize);
  if (p == MAP_FAILED) return err("mmap of the dirty ring: {}", errno_string());
  return std::unique_ptr<DirtyRing>(new DirtyRing(static_cast<kvm_dirty_gfn*>(p), entries));
}

DirtyRing::~DirtyRing() {
  ::munmap(gfns_, entries_ * sizeof(kvm_dirty_gfn));
}

Result<std::shared_ptr<DirtyLog>> DirtyLog::create(int vm_fd, uint32_t ring_entries) {
  // Its own fd: a vCPU (and its ring) may outlive the VM object that created it.
  UniqueFd fd(::dup(vm_fd));
  if (!fd.valid()) return err("dup of the VM fd: {}", errno_string());
  return std::shared_ptr<DirtyLog>(new DirtyLog(std::move(fd), ring_entries));
}

void DirtyLog::track_slot(uint32_t slot, uint64_t pages) {
  std::lock_guard lock(mu_);
  if (slot >= slots_.size()) slots_.resize(slot + 1);
  slots_[slot].pages = pages;
  slots_[slot].bits.assign((pages + 63) / 64, 0);
}

void DirtyLog::add_ring(DirtyRing* ring) {
  std::lock_guard lock(mu_);
  rings_.push_back(ring);
}

void DirtyLog::remove_ring(DirtyRing* ring) {
  std::lock_guard lock(mu_);
  // Pages still in the ring are kept: the guest wrote them whether or not the vCPU lives.
  take(*ring);
  std::erase(rings_, ring);
}

uint32_t DirtyLog::take(DirtyRing& ring) {
  uint32_t taken = 0;
  for (;; ++ring.fetch_, ++taken) {
    kvm_dirty_gfn& gfn = ring.gfns_[ring.fetch_ & (ring.entries_ - 1)];
    // Acquire pairs with KVM's release when it publishes an entry: slot and offset are
    // only valid once the DIRTY flag is seen.
    std::atomic_ref<uint32_t> flags(gfn.flags);
    if (!(flags.load(std::memory_order_acquire) & KVM_DIRTY_GFN_F_DIRTY)) break;
    uint32_t as_id = gfn.slot >> 16;
    uint32_t id = gfn.slot & 0xffff;
    // Address space 1 (SMM) is never mapped by ignition; a slot no longer logging is stale.
    if (as_id == 0 && id < slots_.size() && gfn.offset < slots_[id].pages)
      slots_[id].bits[gfn.offset / 64] |= 1ULL << (gfn.offset % 64);
    flags.store(KVM_DIRTY_GFN_F_RESET, std::memory_order_release);
  }
  return taken;
}

Result<void> DirtyLog::reset_rings() {
  // Write-protects the harvested pages again and frees their ring entries, on every vCPU.
  if (::ioctl(vm_fd_.get(), KVM_RESET_DIRTY_RINGS, 0) < 0)
    return err("KVM_RESET_DIRTY_RINGS: {}", errno_string());
  return {};
}

Result<uint32_t> DirtyLog::drain(DirtyRing& ring) {
  std::lock_guard lock(mu_);
  uint32_t taken = take(ring);
  // Even when nothing was taken here: another thread may have taken this ring's entries
  // without resetting yet, and KVM only lets the vCPU run once the ring has room.
  IGN_TRY(reset_rings());
  return taken;
}

Result<void> DirtyLog::read_bitmaps() {
  for (uint32_t id = 0; id < slots_.size(); ++id) {
    if (slots_[id].pages == 0) continue;
    kvm_dirty_log log{};
    log.slot = id;
    log.dirty_bitmap = slots_[id].bits.data();
    if (::ioctl(vm_fd_.get(), KVM_GET_DIRTY_LOG, &log) < 0)
      return err("KVM_GET_DIRTY_LOG slot {}: {}", id, errno_string());
  }
  return {};
}

Result<void> DirtyLog::collect(DirtySink sink) {
  std::lock_guard lock(mu_);
  if (ring_entries_) {
    uint32_t taken = 0;
    for (DirtyRing* ring : rings_) taken += take(*ring);
    if (taken) IGN_TRY(reset_rings());
  } else {
    IGN_TRY(read_bitmaps());
  }
  for (uint32_t id = 0; id < slots_.size(); ++id) {
    auto& bits = slots_[id].bits;
    for (uint64_t w = 0; w < bits.size(); ++w) {
      if (bits[w] == 0) continue;
      sink(DirtyPages{id, w * 64, bits[w]});
      bits[w] = 0;
    }
  }
  return {};
}

}  // namespace ignition::hv::kvm
