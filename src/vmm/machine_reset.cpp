// Dirty-page tracking, in-process checkpoints and resets. A reset copies back only the
// pages written since the checkpoint (KVM's dirty log for the guest's writes, GuestMemory's
// for the devices'), then loads the saved vCPU, chip and device state into the same
// objects: no new VM, no new threads, no new mappings.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "arch/x86_64/msrs.hpp"
#include "vmm/machine.hpp"

namespace ignition::vmm {

namespace {
constexpr uint64_t kPageSize = 4096;
using Clock = std::chrono::steady_clock;
}  // namespace

Result<void> Machine::enable_dirty_tracking() {
  if (dirty_tracking_) return {};
  uint32_t slot = 0;
  for (const auto& r : memory_.regions())
    IGN_TRY(vm_->map_memory(slot++, r.gpa, r.size, r.host, /*log_dirty=*/true));
  memory_.track_writes();
  dirty_harvest_ = DirtyBitmap(memory_.page_count());
  dirty_since_snapshot_ = DirtyBitmap(memory_.page_count());
  dirty_tracking_ = true;
  return {};
}

Result<void> Machine::harvest_dirty_pages() {
  if (!dirty_tracking_) return err("dirty page tracking is off (machine-config track_dirty_pages)");
  // Slot i is region i (enable_dirty_tracking); the hypervisor reports pages per slot.
  const auto& regions = memory_.regions();
  auto merge = [&](const hv::DirtyPages& p) {
    if (p.slot >= regions.size()) return;
    const auto& r = regions[p.slot];
    uint64_t count = std::min<uint64_t>(64, r.size / kPageSize - p.first_page);
    dirty_harvest_.merge(r.file_offset / kPageSize + p.first_page, {&p.mask, 1}, count);
  };
  IGN_TRY(vm_->collect_dirty(merge));
  memory_.take_written(dirty_harvest_);
  auto from = dirty_harvest_.words();
  auto to_snapshot = dirty_since_snapshot_.words();
  for (size_t i = 0; i < from.size(); ++i) {
    if (from[i] == 0) continue;
    to_snapshot[i] |= from[i];
    if (checkpoint_) checkpoint_->dirty.words()[i] |= from[i];
    from[i] = 0;
  }
  return {};
}

Result<void> Machine::checkpoint() {
  if (!paused_) return err("checkpoint: the VM must be paused");
  IGN_TRY(enable_dirty_tracking());
  IGN_TRY(harvest_dirty_pages());  // what came before the checkpoint is in its image
  IGN_ASSIGN_OR_RETURN(auto ram, MemoryImage::capture(memory_));
  auto cp = std::make_unique<Checkpoint>(Checkpoint{.vcpus = {},
                                                    .vm = {},
                                                    .serial = {},
                                                    .i8042 = {},
                                                    .virtio = {},
                                                    .ram = std::move(ram),
                                                    .dirty = DirtyBitmap(memory_.page_count())});
  IGN_ASSIGN_OR_RETURN(auto kvm_msrs, hypervisor_->msr_index_list());
  for (size_t id = 0; id < vcpus_.size(); ++id) {
    IGN_ASSIGN_OR_RETURN(auto cpuid, vcpus_[id]->get_cpuid());
    auto state = vcpus_[id]->save_state(x86_64::snapshot_msr_list(kvm_msrs, cpuid));
    if (!state.ok()) return context(state.error(), fmt::format("checkpoint: vCPU {}", id));
    // TSC deadline last (after the LAPIC mode and IA32_TSC), so reset_state() need not reorder.
    std::stable_partition(state->msrs.begin(), state->msrs.end(),
                          [](const hv::Msr& m) { return m.index != x86_64::kMsrTscDeadline; });
    cp->vcpus.push_back(std::move(state).value());
  }
  IGN_ASSIGN_OR_RETURN(cp->vm, vm_->save_state());
  cp->serial = serial_->save_state();
  cp->i8042 = i8042_->save_state();
  for (size_t i = 0; i < virtio_.size(); ++i) {
    auto state = virtio_[i].transport->save_state();
    if (!state.ok()) return context(state.error(), fmt::format("checkpoint: virtio device {}", i));
    cp->virtio.push_back(std::move(state).value());
  }
  checkpoint_ = std::move(cp);
  reset_samples_.reserve(kMaxResetSamples);
  return {};
}

Result<ResetStats> Machine::reset_to_checkpoint() {
  if (!paused_) return err("reset: the VM must be paused");
  if (!checkpoint_) return err("reset: there is no checkpoint");
  auto started = Clock::now();
  IGN_TRY(harvest_dirty_pages());
  Checkpoint& cp = *checkpoint_;
  ResetStats stats;
  stats.pages = cp.dirty.count();
  cp.ram.restore_pages(memory_, cp.dirty);
  cp.dirty.clear();
  auto copied = Clock::now();
  stats.copy = copied - started;

  for (size_t id = 0; id < vcpus_.size(); ++id) {
    auto restored = vcpus_[id]->reset_state(cp.vcpus[id]);
    if (!restored.ok()) return context(restored.error(), fmt::format("reset: vCPU {}", id));
  }
  IGN_TRY(vm_->restore_state(cp.vm));
  IGN_TRY(i8042_->restore_state(cp.i8042));
  IGN_TRY(serial_->restore_state(cp.serial));
  for (size_t i = 0; i < virtio_.size(); ++i) {
    auto restored = virtio_[i].transport->roll_back(cp.virtio[i]);
    if (!restored.ok()) return context(restored.error(), fmt::format("reset: virtio device {}", i));
  }
  // Devices wrote nothing the guest should keep: their writes during the roll back (none
  // expected) must not count against the next reset.
  memory_.take_written(dirty_harvest_);
  dirty_harvest_.clear();
  stats.state = Clock::now() - copied;
  return stats;
}

void Machine::on_reset_port(devices::ResetPort::Request request) {
  // On the vCPU thread that wrote the port: park every vCPU right after this exit, and let
  // the event loop do the work while none runs.
  for (auto& runner : runners_) runner->request_pause();
  post([this, request] {
    pause();
    if (request == devices::ResetPort::Request::Checkpoint) {
      if (auto taken = checkpoint(); !taken.ok()) {
        spdlog::error("checkpoint failed: {}", taken.error().message);
        stop();
        return;
      }
    } else {
      auto stats = reset_to_checkpoint();
      if (!stats.ok()) {
        spdlog::error("reset failed: {}", stats.error().message);
        stop();
        return;
      }
      if (reset_samples_.size() < kMaxResetSamples) reset_samples_.push_back(*stats);
      reset_port_->count_reset();
    }
    resume();
  });
}

void Machine::log_reset_summary() const {
  if (reset_samples_.empty()) return;
  auto median = [this](auto field) {
    std::vector<int64_t> v;
    for (const auto& s : reset_samples_) v.push_back(field(s));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  spdlog::info("Resets = {} median: pages {} copy {} ns state {} ns total {} ns",
               reset_samples_.size(),
               median([](const ResetStats& s) { return static_cast<int64_t>(s.pages); }),
               median([](const ResetStats& s) { return s.copy.count(); }),
               median([](const ResetStats& s) { return s.state.count(); }),
               median([](const ResetStats& s) { return (s.copy + s.state).count(); }));
}

}  // namespace ignition::vmm
