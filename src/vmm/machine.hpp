// The machine: guest memory, the VM and its vCPUs, the legacy devices, the loaded
// kernel. create() builds it from a configuration; run() runs it until the guest
// stops or a vCPU hits something the VMM cannot handle.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arch/x86_64/kernel_loader.hpp"
#include "devices/bus.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/reset_port.hpp"
#include "devices/legacy/serial.hpp"
#include "devices/legacy/vmgenid.hpp"
#include "devices/virtio/balloon/balloon.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/vm_exit.hpp"
#include "hv/hypervisor.hpp"
#include "memory/dirty_bitmap.hpp"
#include "memory/guest_memory.hpp"
#include "mmds/data_store.hpp"
#include "mmds/stack.hpp"
#include "vmm/checkpoint.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vcpu_runner.hpp"

namespace ignition::vmm {

// Where a snapshot lives: the state file (vCPUs, VM, devices, config) and guest RAM.
struct SnapshotPaths {
  std::string state;
  std::string memory;
};

// Full: all of RAM. Diff: only the pages written since the previous snapshot (needs
// machine_config.track_dirty_pages); restored over its parent.
enum class SnapshotKind { Full, Diff };

struct RestoreOptions {
  // File: map the memory file MAP_PRIVATE. Uffd: serve page faults from it through
  // userfaultfd (Firecracker's `mem_backend` `Uffd`).
  enum class MemoryBackend { File, Uffd } memory_backend = MemoryBackend::File;
  // With Uffd: the Unix socket of the page-fault handler that gets the userfaultfd and the
  // memory layout (Firecracker's `mem_backend.backend_path`).
  std::string uffd_socket;
  // iface_id -> host_dev_name: a restored NIC on another TAP (snapshot/load network_overrides).
  std::vector<std::pair<std::string, std::string>> network_overrides;
  // Track dirty pages from the start (for diff snapshots of the restored VM), whatever the
  // snapshot's machine-config says.
  bool track_dirty_pages = false;
  // A clone's own resources: drive_id -> backing file, iface_id -> guest MAC, the vsock
  // device's Unix socket (also snapshot/load `vsock_override`).
  std::vector<std::pair<std::string, std::string>> drive_overrides;
  std::vector<std::pair<std::string, config::MacAddress>> mac_overrides;
  std::optional<std::string> vsock_uds_path;
  // Continue: guest time resumes where it was saved (every clone sees the same clock).
  // AdvanceByWallClock: it moves on by the time since the snapshot (`clock_realtime`).
  hv::ClockRestore clock = hv::ClockRestore::Continue;
  // machine-config huge_pages for the restored RAM ("None", "Transparent", "2M"); unset: the
  // snapshot's. 2 MiB pages restore only through Uffd; "None"/"Transparent" put any
  // snapshot, a 2M one too, on 4 KiB pages.
  std::optional<std::string> huge_pages;
};

struct MachineIo {
  int console_out = 1;  // serial output; -1 discards it
  int console_in = -1;  // serial input; -1 for none
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  // Snapshot when the guest writes the boot-time marker (its "ready point"), then stop
  // (or resume with keep_running_after_snapshot).
  std::optional<SnapshotPaths> snapshot_at_marker;
  SnapshotKind snapshot_kind = SnapshotKind::Full;
  // Called while the VM is still paused after that snapshot (the store copies disks then).
  std::function<Result<void>()> after_snapshot;
  bool keep_running_after_snapshot = false;
  // Attach the checkpoint/reset port (x86_64::kResetPort) for a cooperating guest.
  bool reset_port = false;
  // The MMDS document the API writes, served on the interfaces mmds-config names. Unset:
  // the machine serves an empty document of its own.
  std::shared_ptr<mmds::DataStore> mmds;
};

struct RunOutcome {
  enum class Kind { Reset, Shutdown, Fatal } kind;
  std::string detail;
};

class Machine {
 public:
  static Result<std::unique_ptr<Machine>> create(const config::VmConfig& config,
                                                 const MachineIo& io);
  // A machine that continues where a snapshot left off. Its RAM maps the snapshot's
  // memory file copy-on-write, so any number of restores share it.
  static Result<std::unique_ptr<Machine>> restore(const SnapshotPaths& paths, const MachineIo& io,
                                                  const RestoreOptions& options = {});

  // On the event-loop thread, while paused: writes the whole VM to `paths`.
  Result<void> save_snapshot(const SnapshotPaths& paths, SnapshotKind kind = SnapshotKind::Full);
  ~Machine();

  // ---- In-process checkpoint and reset (machine_reset.cpp) ----
  // On the event-loop thread, while paused: remembers the whole VM (vCPUs, chips, devices,
  // an image of RAM) and starts tracking the pages written from here on.
  Result<void> checkpoint();
  // On the event-loop thread, while paused: rolls the VM back to the last checkpoint,
  // copying back only the pages written since (by the guest or by devices).
  Result<ResetStats> reset_to_checkpoint();
  bool has_checkpoint() const { return checkpoint_ != nullptr; }
  // Resets done through the reset port, with their timings (the first kMaxResetSamples).
  static constexpr size_t kMaxResetSamples = 1 << 16;
  const std::vector<ResetStats>& reset_samples() const { return reset_samples_; }
  // Pages written since the last snapshot (needs dirty tracking); for diff snapshots.
  Result<void> harvest_dirty_pages();

  // Runs every vCPU until the guest reboots or powers off, a vCPU fails, or stop().
  Result<RunOutcome> run();

  // Runs `task` on the thread inside run() (the event loop), between device events.
  // Thread-safe; this is how other threads (the API server, tests) act on a running VM.
  void post(std::function<void()> task);
  // Ends run() as if the guest had powered off. Thread-safe.
  void stop();

  // On the event-loop thread only (from a posted task): a real pause — every vCPU out
  // of the guest and parked, and no device event handled until resume().
  void pause();
  void resume();
  bool paused() const { return paused_; }
  // Why the snapshot at the ready point failed, if it did.
  const std::string& snapshot_error() const { return snapshot_error_; }

  // --- Post-boot device updates and actions (API PATCH, SendCtrlAltDel), defined in
  // machine_updates.cpp; on the event-loop thread. ---
  // PATCH /drives/{id}: a new backing file and/or rate limiter. The configuration follows.
  Result<void> update_drive(const config::PartialDrive& update);
  // PATCH /network-interfaces/{id}: new RX/TX rate limiters (an absent one is kept).
  Result<void> update_network_interface(const config::PartialNetworkInterface& update);
  // PATCH /balloon, PATCH /balloon/statistics, GET /balloon/statistics.
  Result<void> update_balloon(const config::BalloonUpdate& update);
  Result<void> update_balloon_statistics(const config::BalloonStatsUpdate& update);
  // PATCH /pmem/{id}: a new rate limiter (an absent one is kept).
  Result<void> update_pmem(const config::PartialPmem& update);
  Result<config::BalloonStats> balloon_statistics() const;
  // SendCtrlAltDel: the keys into the i8042's buffer, with keyboard interrupts (IRQ 1).
  Result<void> send_ctrl_alt_del();
  // The configuration as it stands: the created or restored one plus post-boot updates.
  const config::VmConfig& config() const { return config_; }
  // Before run(): the vCPUs start parked and device events held, as after pause().
  void start_paused();

  // Counters for the metrics file: what the devices and vCPUs did so far (cumulative).
  struct DriveCounters {
    std::string drive_id;
    uint64_t reads = 0, writes = 0, read_bytes = 0, write_bytes = 0, flushes = 0;
    uint64_t io_errors = 0, invalid_requests = 0, throttled = 0;
    uint64_t updates = 0, update_fails = 0;  // PATCH /drives
  };
  struct NicCounters {
    std::string iface_id;
    uint64_t rx_frames = 0, rx_bytes = 0, rx_dropped = 0, rx_no_buffers = 0, rx_tap_errors = 0,
             rx_rate_limited = 0;
    uint64_t tx_frames = 0, tx_bytes = 0, tx_malformed = 0, tx_tap_errors = 0, tx_spoofed_mac = 0,
             tx_rate_limited = 0;
    uint64_t updates = 0, update_fails = 0;  // PATCH /network-interfaces
  };
  struct Counters {
    std::vector<DriveCounters> drives;
    std::vector<NicCounters> nics;
    std::optional<devices::virtio::BalloonCounters> balloon;
    devices::I8042::Counters i8042;
    uint64_t vcpu_exits = 0;     // every exit of every vCPU
    uint64_t vcpu_failures = 0;  // vCPUs stopped by an error
  };
  Counters counters();
  // --- end post-boot updates ---

  const GuestMemory& memory() const { return memory_; }
  // Writes through it are tracked like a device's (a reset rolls them back): how a fuzzing
  // harness puts each input into the paused guest.
  GuestMemory& memory() { return memory_; }
  const x86_64::LoadedKernel& kernel() const { return kernel_; }
  const std::string& cmdline() const { return cmdline_; }

 private:
  Machine(const config::VmConfig& config, const MachineIo& io, GuestMemory memory, EventLoop loop,
          EventFd task_evt)
      : config_(config),
        io_(io),
        memory_(std::move(memory)),
        loop_(std::move(loop)),
        task_evt_(std::move(task_evt)) {}
  void run_tasks();
  Result<void> setup_vm();
  Result<void> setup_devices();
  Result<void> setup_virtio_devices();
  Result<void> setup_pmem_devices();
  Result<void> add_virtio_device(std::unique_ptr<devices::virtio::Device> device);
  Result<void> load_guest();
  Result<void> setup_vcpus();
  Result<void> create_vcpus();
  void snapshot_at_marker();
  Result<void> enable_dirty_tracking();
  void on_reset_port(devices::ResetPort::Request request);
  void log_reset_summary() const;

  config::VmConfig config_;
  MachineIo io_;
  GuestMemory memory_;
  std::unique_ptr<hv::Hypervisor> hypervisor_;
  std::unique_ptr<hv::Vm> vm_;
  std::vector<std::unique_ptr<hv::Vcpu>> vcpus_;
  std::vector<std::unique_ptr<VcpuRunner>> runners_;

  EventLoop loop_;
  devices::Bus pio_bus_;
  devices::Bus mmio_bus_;
  std::shared_ptr<devices::Serial> serial_;
  std::shared_ptr<devices::I8042> i8042_;
  std::unique_ptr<devices::VmExitRequest> exit_request_;
  UniqueFd serial_out_file_;  // when the console goes to a file
  std::optional<devices::VmGenId> vmgenid_;

  // virtio-mmio devices, in slot order; slot i sits at kVirtioMmioBase + i * 4 KiB.
  struct VirtioSlot {
    std::shared_ptr<devices::virtio::MmioTransport> transport;
    uint64_t base;
    uint32_t irq;
    std::vector<EventFd> queue_kicks;  // ioeventfd per queue
  };
  std::vector<VirtioSlot> virtio_;
  std::unique_ptr<devices::virtio::EventRegistrar> registrar_;
  devices::virtio::Balloon* balloon_ = nullptr;            // owned by its transport; for the API
  std::vector<std::shared_ptr<mmds::Stack>> mmds_stacks_;  // per MMDS interface; metrics

  x86_64::LoadedKernel kernel_{};
  std::string cmdline_;

  EventFd task_evt_;
  std::mutex task_mu_;
  std::vector<std::function<void()>> tasks_;
  bool paused_ = false;
  std::atomic<bool> marker_snapshot_taken_{false};  // read on vCPU threads
  std::string snapshot_error_;                      // set when a snapshot at the marker failed

  // Dirty pages: KVM's log for guest writes, GuestMemory's for device writes, gathered into
  // `dirty_harvest_` and from there into each consumer's own set.
  bool dirty_tracking_ = false;
  DirtyBitmap dirty_harvest_;
  DirtyBitmap dirty_since_snapshot_;
  // Memory files this machine's RAM is layered from (a full snapshot, then diffs); a diff
  // snapshot extends the chain.
  std::vector<std::string> memory_chain_;
  std::unique_ptr<Checkpoint> checkpoint_;
  std::shared_ptr<devices::ResetPort> reset_port_;
  std::vector<ResetStats> reset_samples_;

  // --- Post-boot update state (machine_updates.cpp) ---
  // Finds a device by type and id (drive_id / iface_id) and runs `fn` on it under its
  // transport's lock; false when there is none.
  bool with_virtio_device(devices::virtio::DeviceType type, const std::string& id,
                          const std::function<void(devices::virtio::Device&)>& fn) const;
  // The i8042's keyboard interrupt, registered on first use.
  Result<void> ensure_keyboard_irq();
  bool start_paused_ = false;
  struct UpdateCount {
    std::string id;
    uint64_t count = 0, fails = 0;
  };
  std::vector<UpdateCount> drive_updates_, nic_updates_;
  // --- end post-boot update state ---

  std::mutex stop_mu_;
  std::optional<VcpuStop> vcpu_stop_;  // first vCPU that stopped on its own
};

}  // namespace ignition::vmm
