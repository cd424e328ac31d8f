// Machine snapshots: save a paused VM (config, RAM layout, VM and vCPU state, then RAM
// into its own file) and restore one into a new machine whose RAM maps that file
// copy-on-write. Restore order follows Firecracker: VM and irqchip, vCPUs, memory,
// vCPU state, then VM state (irqchip, PIT, clock).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "arch/x86_64/msrs.hpp"
#include "devices/virtio/net/net.hpp"
#include "snapshot/codec.hpp"
#include "snapshot/hv_state_codec.hpp"
#include "snapshot/snapshot_file.hpp"
#include "vmm/config/json_fields.hpp"
#include "vmm/guest_pages.hpp"
#include "vmm/machine.hpp"
#include "vmm/snapshot_memory.hpp"

namespace ignition::vmm {

namespace {

constexpr const char* kVmSection = "vm";

constexpr const char* kSerialSection = "device.serial";
constexpr const char* kI8042Section = "device.i8042";

std::string virtio_section(size_t slot) {
  return fmt::format("device.virtio.{}", slot);
}
std::string vcpu_section(size_t id) {
  return fmt::format("vcpu.{}", id);
}

}  // namespace

Result<void> Machine::save_snapshot(const SnapshotPaths& paths, SnapshotKind kind) {
  if (!paused_) return err("snapshot: the VM must be paused");
  std::vector<std::string> parents;
  if (kind == SnapshotKind::Diff) {
    if (!dirty_tracking_)
      return err("snapshot: a diff snapshot needs dirty page tracking (track_dirty_pages)");
    if (memory_chain_.empty())
      return err("snapshot: a diff snapshot needs an earlier snapshot of this VM to apply to");
    parents = memory_chain_;
  }
  auto started = std::chrono::steady_clock::now();
  snapshot::SnapshotWriter writer{std::string(hypervisor_->state_tag())};
  std::string config_text = config::to_json(config_).dump();
  IGN_TRY(writer.add_section(kConfigSection, {config_text.begin(), config_text.end()}));
  IGN_TRY(writer.add_section(kLayoutSection, encode_layout(memory_)));
  IGN_TRY(writer.add_section(kMemoryParentsSection, encode_paths(parents)));

  IGN_ASSIGN_OR_RETURN(auto kvm_msrs, hypervisor_->msr_index_list());
  for (size_t id = 0; id < vcpus_.size(); ++id) {
    IGN_ASSIGN_OR_RETURN(auto cpuid, vcpus_[id]->get_cpuid());
    auto msrs = x86_64::snapshot_msr_list(kvm_msrs, cpuid);
    auto state = vcpus_[id]->save_state(msrs);
    if (!state.ok()) return context(state.error(), fmt::format("snapshot: vCPU {}", id));
    IGN_TRY(writer.add_section(vcpu_section(id), snapshot::encode_vcpu_state(*state)));
  }
  IGN_ASSIGN_OR_RETURN(auto vm_state, vm_->save_state());
  IGN_TRY(writer.add_section(kVmSection, snapshot::encode_vm_state(vm_state)));
  IGN_TRY(writer.add_section(kSerialSection, serial_->save_state()));
  IGN_TRY(writer.add_section(kI8042Section, i8042_->save_state()));
  for (size_t i = 0; i < virtio_.size(); ++i) {
    auto state = virtio_[i].transport->save_state();
    if (!state.ok()) return context(state.error(), fmt::format("snapshot: virtio device {}", i));
    IGN_TRY(writer.add_section(virtio_section(i), std::move(state).value()));
  }

  if (dirty_tracking_) IGN_TRY(harvest_dirty_pages());
  if (kind == SnapshotKind::Diff)
    IGN_TRY(memory_.save_pages(paths.memory, dirty_since_snapshot_));
  else
    IGN_TRY(memory_.save(paths.memory));
  IGN_TRY(writer.write(paths.state));
  if (dirty_tracking_) dirty_since_snapshot_.clear();
  parents.push_back(absolute_path(paths.memory));
  memory_chain_ = std::move(parents);
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  spdlog::info("snapshot written to {} and {} in {} us", paths.state, paths.memory, took.count());
  return {};
}

void Machine::snapshot_at_marker() {
  if (marker_snapshot_taken_) return;
  marker_snapshot_taken_ = true;
  pause();
  auto saved = save_snapshot(*io_.snapshot_at_marker, io_.snapshot_kind);
  if (saved.ok() && io_.after_snapshot) saved = io_.after_snapshot();
  if (!saved.ok()) snapshot_error_ = saved.error().message;
  if (!saved.ok() || !io_.keep_running_after_snapshot) {
    stop();
    return;
  }
  resume();
}

Result<std::unique_ptr<Machine>> Machine::restore(const SnapshotPaths& paths, const MachineIo& io,
                                                  const RestoreOptions& options) {
  bool uffd = options.memory_backend == RestoreOptions::MemoryBackend::Uffd;
  if (uffd && options.uffd_socket.empty())
    return err("snapshot restore: the Uffd memory backend needs the handler's socket");
  IGN_ASSIGN_OR_RETURN(auto reader, snapshot::SnapshotReader::open(paths.state));
  IGN_ASSIGN_OR_RETURN(auto hypervisor, hv::open_hypervisor());
  IGN_TRY(reader.expect_tag(hypervisor->state_tag()));

  auto config = read_snapshot_config(reader);
  if (!config.ok()) return config.error();
  for (const auto& [iface_id, host_dev_name] : options.network_overrides) {
    auto it = std::find_if(config->network_interfaces.begin(), config->network_interfaces.end(),
                           [&](const auto& n) { return n.iface_id == iface_id; });
    if (it == config->network_interfaces.end())
      return err("network override: the snapshot has no network interface '{}'", iface_id);
    it->host_dev_name = host_dev_name;
  }
  for (const auto& [drive_id, path] : options.drive_overrides) {
    auto it = std::find_if(config->drives.begin(), config->drives.end(),
                           [&](const auto& d) { return d.drive_id == drive_id; });
    if (it == config->drives.end())
      return err("drive override: the snapshot has no drive '{}'", drive_id);
    it->path_on_host = path;
  }
  for (const auto& [iface_id, mac] : options.mac_overrides) {
    auto it = std::find_if(config->network_interfaces.begin(), config->network_interfaces.end(),
                           [&](const auto& n) { return n.iface_id == iface_id; });
    if (it == config->network_interfaces.end())
      return err("MAC override: the snapshot has no network interface '{}'", iface_id);
    it->guest_mac = mac;
  }
  if (options.vsock_uds_path) {
    if (!config->vsock) return err("vsock override: the snapshot has no vsock device");
    config->vsock->uds_path = *options.vsock_uds_path;
  }
  // The restored RAM is a private view of the memory file (4 KiB pages, optionally advised
  // for THP), or of the pages a Uffd handler serves, which can be 2 MiB hugetlbfs pages. As in
  // Firecracker, a snapshot on 2M pages restores on 2M pages only through Uffd; asking for
  // huge_pages None or Transparent restores it on 4 KiB pages from its file.
  if (options.huge_pages) {
    config->machine_config.huge_pages = *options.huge_pages;
    IGN_TRY(config::validate_machine_config(config->machine_config));
  }
  const GuestMemory::Pages pages = guest_pages(config->machine_config.huge_pages);
  if (pages == GuestMemory::Pages::kHuge2M && !uffd)
    return err(
        "the snapshot's guest memory was on 2M huge pages, which restore only through the Uffd "
        "memory backend; load it with huge_pages \"None\" (ignition restore or clone "
        "--huge-pages None) to restore it on 4 KiB pages from its memory file");

  IGN_ASSIGN_OR_RETURN(auto layout_bytes, reader.section(kLayoutSection));
  IGN_ASSIGN_OR_RETURN(auto ranges, decode_layout(layout_bytes));
  IGN_ASSIGN_OR_RETURN(auto parents, snapshot_memory_parents(reader));

  // Decode everything before building anything: a bad file fails here, whole.
  std::vector<hv::VcpuState> vcpu_states;
  for (uint32_t id = 0; id < config->machine_config.vcpu_count; ++id) {
    IGN_ASSIGN_OR_RETURN(auto bytes, reader.section(vcpu_section(id)));
    auto state = snapshot::decode_vcpu_state(bytes);
    if (!state.ok()) return context(state.error(), fmt::format("snapshot vCPU {}", id));
    vcpu_states.push_back(std::move(state).value());
  }
  IGN_ASSIGN_OR_RETURN(auto vm_bytes, reader.section(kVmSection));
  IGN_ASSIGN_OR_RETURN(auto vm_state, snapshot::decode_vm_state(vm_bytes));

  // With Uffd the memory file is the handler's business; the VMM only knows its socket, and
  // contacts the handler only once the state decoded: a bad file does not use it up.
  IGN_ASSIGN_OR_RETURN(auto memory,
                       uffd ? load_snapshot_memory_uffd(options.uffd_socket, parents, ranges, pages)
                            : load_snapshot_memory(paths.memory, parents, ranges));
  if (pages == GuestMemory::Pages::kTransparent) IGN_TRY(memory.advise_huge_pages());
  IGN_ASSIGN_OR_RETURN(auto loop, EventLoop::create());
  IGN_ASSIGN_OR_RETURN(auto task_evt, EventFd::create());
  std::unique_ptr<Machine> m(
      new Machine(*config, io, std::move(memory), std::move(loop), std::move(task_evt)));
  IGN_TRY(m->setup_vm());
  if (options.track_dirty_pages) IGN_TRY(m->enable_dirty_tracking());
  // A diff snapshot layers on the files this RAM came from; a Uffd restore has none here.
  if (!uffd) {
    m->memory_chain_ = parents;
    m->memory_chain_.push_back(absolute_path(paths.memory));
  }
  IGN_TRY(m->setup_devices());
  IGN_TRY(m->setup_virtio_devices());
  for (size_t i = 0; i < m->virtio_.size(); ++i) {
    IGN_ASSIGN_OR_RETURN(auto bytes, reader.section(virtio_section(i)));
    auto restored = m->virtio_[i].transport->restore_state(bytes);
    if (!restored.ok()) return context(restored.error(), fmt::format("virtio device {}", i));
  }
  for (const auto& [iface_id, mac] : options.mac_overrides)
    for (auto& v : m->virtio_)
      v.transport->with_device([&](devices::virtio::Device& d) {
        if (auto* net = dynamic_cast<devices::virtio::Net*>(&d); net && net->id() == iface_id)
          net->set_guest_mac(mac);
      });
  IGN_TRY(m->create_vcpus());
  for (size_t id = 0; id < m->vcpus_.size(); ++id) {
    auto restored = m->vcpus_[id]->restore_state(vcpu_states[id]);
    if (!restored.ok()) return context(restored.error(), fmt::format("restoring vCPU {}", id));
  }
  IGN_TRY(m->vm_->restore_state(vm_state, options.clock));
  // The guest re-reads the VMGenID (written by setup_devices) once the irqchip is back.
  m->vmgenid_->notify();
  // Interrupts raised from here on reach a restored irqchip.
  IGN_ASSIGN_OR_RETURN(auto i8042_bytes, reader.section(kI8042Section));
  IGN_TRY(m->i8042_->restore_state(i8042_bytes));
  IGN_ASSIGN_OR_RETURN(auto serial_bytes, reader.section(kSerialSection));
  IGN_TRY(m->serial_->restore_state(serial_bytes));
  for (auto& v : m->virtio_) v.transport->signal_used_queues();
  return m;
}

}  // namespace ignition::vmm
