// VmmController: pre-boot configuration, the start of the VM, and actions on it after.
#include "api/vmm_controller.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "api/api_types.hpp"

namespace ignition::api {

namespace {

// Messages for what the API accepts and validates but the VMM cannot do yet.
Error not_yet(std::string_view what) {
  return err("The requested operation is not supported yet: {}.", what);
}

Error prefixed(std::string_view prefix, const Error& e) {
  return err("{}: {}", prefix, e.message);
}

// Firecracker opens the files a resource names when the resource is configured, so a bad
// path fails the PUT instead of InstanceStart.
Result<void> check_openable(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return err("{}: {}", path, errno_string());
  return {};
}

Result<void> check_boot_source_files(const config::BootSource& bs) {
  if (auto r = check_openable(bs.kernel_image_path, O_RDONLY); !r.ok()) {
    return err("Boot source error: The kernel file cannot be opened: {}", r.error().message);
  }
  if (bs.initrd_path) {
    if (auto r = check_openable(*bs.initrd_path, O_RDONLY); !r.ok()) {
      return err(
          "Boot source error: The initrd file cannot be opened due to invalid path or invalid "
          "permissions. {}",
          r.error().message);
    }
  }
  return {};
}

Result<void> check_drive_file(const config::Drive& d) {
  if (!d.path_on_host) return {};  // vhost-user: the backend owns the disk
  if (auto r = check_openable(*d.path_on_host, d.read_only() ? O_RDONLY : O_RDWR); !r.ok()) {
    return err("Drive config error: Unable to open the backing file: {}", r.error().message);
  }
  return {};
}

Result<void> check_pmem_file(const config::Pmem& p) {
  if (auto r = check_openable(p.path_on_host, p.read_only ? O_RDONLY : O_RDWR); !r.ok()) {
    return err("Pmem config error: Unable to open the backing file: {}", r.error().message);
  }
  return {};
}

// The metrics file or FIFO must exist; read-write so that opening a FIFO without a reader
// does not fail (Firecracker's open_file_nonblock).
Result<UniqueFd> open_metrics(const config::MetricsConfig& m) {
  UniqueFd fd(::open(m.metrics_path.c_str(), O_RDWR | O_APPEND | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    return err("Metrics error: Cannot initialize the metrics system due to bad user input: {}: {}",
               m.metrics_path, errno_string());
  }
  return fd;
}

template <typename T, typename Id>
void insert_or_replace(std::vector<T>& items, T item, Id id_of) {
  auto it = std::find_if(items.begin(), items.end(),
                         [&](const T& existing) { return id_of(existing) == id_of(item); });
  if (it != items.end()) {
    *it = std::move(item);
  } else {
    items.push_back(std::move(item));
  }
}

std::string describe(const Result<vmm::RunOutcome>& outcome) {
  if (!outcome.ok()) return outcome.error().message;
  return outcome->detail;
}

std::chrono::microseconds since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               t);
}

}  // namespace

std::string_view to_string(VmState s) {
  switch (s) {
    case VmState::kNotStarted:
      return "Not started";
    case VmState::kRunning:
      return "Running";
    case VmState::kPaused:
      return "Paused";
    case VmState::kStopped:
      return "Stopped";
  }
  return "Unknown";
}

Result<std::unique_ptr<VmmController>> VmmController::create(ControllerOptions options) {
  if (!options.launcher) return err("VmmController needs a VM launcher");
  IGN_ASSIGN_OR_RETURN(auto exit_evt, EventFd::create());
  return std::unique_ptr<VmmController>(new VmmController(std::move(options), std::move(exit_evt)));
}

VmmController::~VmmController() {
  std::unique_ptr<PeriodicTask> periodic;
  std::unique_ptr<RunningVm> vm;
  {
    std::lock_guard lock(mu_);
    periodic = std::move(periodic_metrics_);
    vm = std::move(vm_);
  }
  // Its tick takes mu_: joined without holding it.
  periodic.reset();
  // Destroying the VM joins its thread, whose exit callback takes exit_mu_: never hold
  // mu_ here, and let it finish while this object is still whole.
  vm.reset();
}

// --- reading ---

config::InstanceInfo VmmController::instance_info() const {
  config::InstanceInfo info;
  info.id = options_.instance_id;
  info.vmm_version = options_.vmm_version;
  info.state = std::string(to_string(state()));
  return info;
}

config::VmConfig VmmController::vm_config() const {
  std::lock_guard lock(mu_);
  return config_;
}

config::MachineConfig VmmController::machine_config() const {
  std::lock_guard lock(mu_);
  return config_.machine_config;
}

VmState VmmController::state() const {
  std::lock_guard lock(mu_);
  if (!started()) return VmState::kNotStarted;
  {
    std::lock_guard exit_lock(exit_mu_);
    if (outcome_) return VmState::kStopped;
  }
  return vm_->paused() ? VmState::kPaused : VmState::kRunning;
}

Result<config::Balloon> VmmController::balloon() const {
  std::lock_guard lock(mu_);
  if (!config_.balloon) return err("Balloon config error: No balloon device found.");
  return *config_.balloon;
}

nlohmann::json VmmController::mmds() const {
  std::lock_guard lock(mu_);
  return mmds_->get();
}

// --- pre-boot configuration ---

Result<void> VmmController::commit(config::VmConfig candidate, std::string_view error_prefix) {
  if (auto valid = config::validate_vm_config(candidate); !valid.ok()) {
    return prefixed(error_prefix, valid.error());
  }
  config_ = std::move(candidate);
  return {};
}

Result<void> VmmController::configure(const config::VmConfig& config) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  if (auto valid = config::validate_vm_config(config); !valid.ok()) {
    return prefixed("Invalid VM configuration", valid.error());
  }
  if (!config.boot_source.kernel_image_path.empty()) {
    IGN_TRY(check_boot_source_files(config.boot_source));
  }
  for (const auto& d : config.drives) IGN_TRY(check_drive_file(d));
  for (const auto& p : config.pmem) IGN_TRY(check_pmem_file(p));
  UniqueFd metrics_fd;
  if (config.metrics) {
    IGN_ASSIGN_OR_RETURN(metrics_fd, open_metrics(*config.metrics));
  }
  if (config.logger && options_.apply_logger) {
    if (auto r = options_.apply_logger(*config.logger); !r.ok()) {
      return prefixed("Logger error", r.error());
    }
  }
  config_ = config;
  if (metrics_fd.valid()) metrics_file_.emplace(std::move(metrics_fd));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_machine_config(const config::MachineConfig& mc) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.machine_config = mc;
  IGN_TRY(commit(std::move(candidate), "Machine config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::patch_machine_config(const config::MachineConfigUpdate& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  auto updated = config::apply_machine_config_update(config_.machine_config, update);
  if (!updated.ok()) return prefixed("Machine config error", updated.error());
  config::VmConfig candidate = config_;
  candidate.machine_config = *updated;
  IGN_TRY(commit(std::move(candidate), "Machine config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_boot_source(const config::BootSource& bs) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  IGN_TRY(check_boot_source_files(bs));
  config::VmConfig candidate = config_;
  candidate.boot_source = bs;
  IGN_TRY(commit(std::move(candidate), "Boot source error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_drive(const config::Drive& drive) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  IGN_TRY(check_drive_file(drive));
  config::VmConfig candidate = config_;
  insert_or_replace(candidate.drives, drive, [](const config::Drive& d) { return d.drive_id; });
  IGN_TRY(commit(std::move(candidate), "Drive config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_network_interface(const config::NetworkInterface& net) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  insert_or_replace(candidate.network_interfaces, net,
                    [](const config::NetworkInterface& n) { return n.iface_id; });
  IGN_TRY(commit(std::move(candidate), "Network config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_pmem(const config::Pmem& pmem) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  IGN_TRY(check_pmem_file(pmem));
  config::VmConfig candidate = config_;
  insert_or_replace(candidate.pmem, pmem, [](const config::Pmem& p) { return p.id; });
  IGN_TRY(commit(std::move(candidate), "Pmem config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_vsock(const config::Vsock& vsock) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.vsock = vsock;
  IGN_TRY(commit(std::move(candidate), "Vsock config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_entropy(const config::Entropy& entropy) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.entropy = entropy;
  IGN_TRY(commit(std::move(candidate), "Entropy config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_balloon(const config::Balloon& balloon) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.balloon = balloon;
  IGN_TRY(commit(std::move(candidate), "Balloon config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_logger(const config::LoggerConfig& logger) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  if (options_.apply_logger) {
    if (auto r = options_.apply_logger(logger); !r.ok()) return prefixed("Logger error", r.error());
  }
  config_.logger = logger;
  return {};
}

Result<void> VmmController::put_metrics(const config::MetricsConfig& metrics) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  if (metrics_file_) {
    return err(
        "Metrics error: Cannot initialize the metrics system due to bad user input: "
        "Reinitialization of metrics not allowed.");
  }
  IGN_ASSIGN_OR_RETURN(auto fd, open_metrics(metrics));
  metrics_file_.emplace(std::move(fd));
  config_.metrics = metrics;
  return {};
}

Result<void> VmmController::put_serial(const config::SerialConfig& serial) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config_.serial = serial;
  return {};
}

Result<void> VmmController::put_cpu_config(const config::CpuConfig& cpu) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config_.cpu_config = cpu;
  config_.cpu_config_path.reset();
  return {};
}

Result<void> VmmController::put_mmds_config(const config::MmdsConfig& mmds) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.mmds_config = mmds;
  IGN_TRY(commit(std::move(candidate), "MMDS config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::put_memory_hotplug(const config::MemoryHotplugConfig& hotplug) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  config::VmConfig candidate = config_;
  candidate.memory_hotplug = hotplug;
  IGN_TRY(commit(std::move(candidate), "Memory hotplug config error"));
  boot_path_ = true;
  return {};
}

Result<void> VmmController::load_snapshot(const config::SnapshotLoadParams& params) {
  auto began = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  if (boot_path_) {
    return err(
        "Load snapshot error: Loading a microVM snapshot not allowed after configuring "
        "boot-specific resources.");
  }
  if (!options_.restorer) return not_yet("loading a snapshot in this process");
  auto restored =
      options_.restorer(params, [this](const Result<vmm::RunOutcome>& o) { on_exit(o); });
  if (!restored.ok()) return prefixed("Load snapshot error", restored.error());
  api_metrics_.store_latency("vmm_load_snapshot", since(began));
  vm_ = std::move(restored->vm);
  adopt_machine_config(std::move(restored->config));
  // Dirty pages are tracked if the snapshot's VM tracked them or the load asks for it.
  config_.machine_config.track_dirty_pages =
      config_.machine_config.track_dirty_pages || params.track_dirty_pages;
  api_metrics_.store_latency("load_snapshot", since(began));
  start_metrics_locked();
  return {};
}

// --- post-boot updates ---

Result<void> VmmController::check_pre_boot() const {
  if (started()) return Error{std::string(kNotSupportedPostBoot)};
  return {};
}

Result<void> VmmController::check_running() const {
  if (!started()) return Error{std::string(kNotSupportedPreBoot)};
  std::lock_guard exit_lock(exit_mu_);
  if (outcome_) return err("Internal VMM error: the microVM has stopped: {}", describe(*outcome_));
  return {};
}

Result<void> VmmController::patch_drive(const config::PartialDrive& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  auto it = std::find_if(config_.drives.begin(), config_.drives.end(),
                         [&](const config::Drive& d) { return d.drive_id == update.drive_id; });
  if (it == config_.drives.end()) {
    return err("Drive config error: No drive with id '{}' is configured.", update.drive_id);
  }
  if (update.path_on_host && it->is_vhost_user()) {
    return err("Drive config error: A vhost-user drive has no path_on_host to update.");
  }
  if (update.path_on_host) {
    if (auto r = check_openable(*update.path_on_host, it->read_only() ? O_RDONLY : O_RDWR);
        !r.ok()) {
      return err("Drive config error: Unable to open the backing file: {}", r.error().message);
    }
  }
  if (auto r = update_vm([update](vmm::Machine& m) { return m.update_drive(update); }); !r.ok()) {
    return prefixed("Drive config error: Unable to patch the block device", r.error());
  }
  return {};
}

Result<void> VmmController::patch_network_interface(const config::PartialNetworkInterface& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  bool found =
      std::any_of(config_.network_interfaces.begin(), config_.network_interfaces.end(),
                  [&](const config::NetworkInterface& n) { return n.iface_id == update.iface_id; });
  if (!found) {
    return err("Network config error: No network interface with id '{}' is configured.",
               update.iface_id);
  }
  auto r = update_vm([update](vmm::Machine& m) { return m.update_network_interface(update); });
  if (!r.ok())
    return prefixed("Network config error: Unable to update the network device", r.error());
  return {};
}

Result<void> VmmController::patch_pmem(const config::PartialPmem& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  bool found = std::any_of(config_.pmem.begin(), config_.pmem.end(),
                           [&](const config::Pmem& p) { return p.id == update.id; });
  if (!found)
    return err("Pmem config error: No pmem device with id '{}' is configured.", update.id);
  if (auto r = update_vm([update](vmm::Machine& m) { return m.update_pmem(update); }); !r.ok())
    return prefixed("Pmem config error: Unable to patch the pmem device", r.error());
  return {};
}

Result<void> VmmController::patch_balloon(const config::BalloonUpdate& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (!config_.balloon) return err("Balloon config error: No balloon device found.");
  if (update.amount_mib > config_.machine_config.mem_size_mib) {
    return err("Balloon update error: Amount of pages requested is too large.");
  }
  auto r = update_vm([update](vmm::Machine& m) { return m.update_balloon(update); });
  if (!r.ok()) return prefixed("Balloon update error", r.error());
  return {};
}

Result<config::BalloonStats> VmmController::balloon_statistics() const {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (!config_.balloon) return err("Balloon config error: No balloon device found.");
  if (config_.balloon->stats_polling_interval_s == 0) {
    return err("Balloon config error: Statistics for the balloon device are not enabled.");
  }
  auto stats = query_vm<config::BalloonStats>(
      [](vmm::Machine& m) { return m.balloon_statistics(); }, options_.vm_timeout);
  if (!stats.ok()) return prefixed("Balloon config error", stats.error());
  return stats;
}

Result<void> VmmController::patch_balloon_statistics(const config::BalloonStatsUpdate& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (!config_.balloon) return err("Balloon config error: No balloon device found.");
  bool enabled = config_.balloon->stats_polling_interval_s != 0;
  if (enabled != (update.stats_polling_interval_s != 0)) {
    return err("Balloon update error: Cannot enable/disable statistics after boot.");
  }
  auto r = update_vm([update](vmm::Machine& m) { return m.update_balloon_statistics(update); });
  if (!r.ok()) return prefixed("Balloon update error", r.error());
  return {};
}

Result<void> VmmController::check_hinting() const {
  IGN_TRY(check_running());
  if (!config_.balloon) return err("Balloon config error: No balloon device found.");
  if (!config_.balloon->free_page_hinting) {
    return err(
        "Balloon update error: Free page hinting was not enabled when the device was "
        "configured.");
  }
  return {};
}

Result<void> VmmController::start_balloon_hinting(const BalloonHintingStart& cmd) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_hinting());
  (void)cmd;
  return not_yet("free page hinting");
}

Result<nlohmann::json> VmmController::balloon_hinting_status() const {
  std::lock_guard lock(mu_);
  IGN_TRY(check_hinting());
  return not_yet("free page hinting");
}

Result<void> VmmController::stop_balloon_hinting() {
  std::lock_guard lock(mu_);
  IGN_TRY(check_hinting());
  return not_yet("free page hinting");
}

Result<nlohmann::json> VmmController::memory_hotplug_status() const {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (!config_.memory_hotplug) {
    return err("Memory hotplug update error: The memory hotplug device is not configured.");
  }
  return not_yet("memory hotplug");
}

Result<void> VmmController::patch_memory_hotplug(const config::MemoryHotplugSizeUpdate& update) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (!config_.memory_hotplug) {
    return err("Memory hotplug update error: The memory hotplug device is not configured.");
  }
  if (update.requested_size_mib > config_.memory_hotplug->total_size_mib) {
    return err(
        "Memory hotplug update error: requested_size_mib ({}) is larger than "
        "total_size_mib ({}).",
        update.requested_size_mib, config_.memory_hotplug->total_size_mib);
  }
  return not_yet("memory hotplug");
}

Result<void> VmmController::create_snapshot(const config::SnapshotCreateParams& params) {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (params.snapshot_type == config::SnapshotType::kDiff &&
      !config_.machine_config.track_dirty_pages) {
    return err(
        "Create snapshot error: Diff snapshots are not allowed on uVMs with dirty page "
        "tracking disabled.");
  }
  if (!vm_->paused()) {
    return err(
        "Create snapshot error: The microVM must be paused first: save/restore "
        "unavailable while running.");
  }
  auto began = std::chrono::steady_clock::now();
  bool diff = params.snapshot_type == config::SnapshotType::kDiff;
  vmm::SnapshotPaths paths{params.snapshot_path, params.mem_file_path};
  auto kind = diff ? vmm::SnapshotKind::Diff : vmm::SnapshotKind::Full;
  auto vmm_took = std::make_shared<std::chrono::microseconds>();
  auto r = vm_->call(
      [paths, kind, vmm_took](vmm::Machine& m) -> Result<void> {
        auto t = std::chrono::steady_clock::now();
        auto saved = m.save_snapshot(paths, kind);
        *vmm_took = since(t);
        return saved;
      },
      options_.snapshot_timeout);
  if (!r.ok()) return prefixed("Create snapshot error", r.error());
  api_metrics_.store_latency(diff ? "vmm_diff_create_snapshot" : "vmm_full_create_snapshot",
                             *vmm_took);
  api_metrics_.store_latency(diff ? "diff_create_snapshot" : "full_create_snapshot", since(began));
  return {};
}

// --- MMDS ---

Result<void> VmmController::put_mmds(nlohmann::json data) {
  std::lock_guard lock(mu_);
  return mmds_->put(std::move(data));
}

Result<void> VmmController::patch_mmds(const nlohmann::json& patch) {
  std::lock_guard lock(mu_);
  return mmds_->patch(patch);
}

// --- actions ---

Result<void> VmmController::start() {
  std::lock_guard lock(mu_);
  IGN_TRY(check_pre_boot());
  if (config_.boot_source.kernel_image_path.empty()) {
    return err("Start microvm error: Cannot start microvm without kernel configuration.");
  }
  if (auto valid = config::validate_vm_config(config_); !valid.ok()) {
    return prefixed("Start microvm error", valid.error());
  }
  auto vm = options_.launcher(config_, [this](const Result<vmm::RunOutcome>& o) { on_exit(o); });
  if (!vm.ok()) return prefixed("Start microvm error", vm.error());
  vm_ = std::move(vm).value();
  start_metrics_locked();
  return {};
}

Result<void> VmmController::send_ctrl_alt_del() {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  auto r = vm_->call([](vmm::Machine& m) { return m.send_ctrl_alt_del(); }, options_.vm_timeout);
  if (!r.ok()) return prefixed("Internal VMM error", r.error());
  return {};
}

Result<void> VmmController::flush_metrics() {
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  return flush_metrics_locked();
}

Result<void> VmmController::flush_metrics_locked() {
  if (!metrics_file_) return {};  // Firecracker: nothing to flush is not an error
  auto now = std::chrono::system_clock::now().time_since_epoch();
  nlohmann::json line = {
      {"utc_timestamp_ms", std::chrono::duration_cast<std::chrono::milliseconds>(now).count()}};
  if (config_.metrics && config_.metrics->emit_id) line["id"] = options_.instance_id;
  if (config_.metrics && config_.metrics->properties) {
    line["properties"] = *config_.metrics->properties;
  }
  nlohmann::json counters = api_metrics_.counters();
  // A machine that does not answer (stopped, or a test double) leaves its groups out.
  auto machine = query_vm<vmm::Machine::Counters>([](vmm::Machine& m) { return m.counters(); },
                                                  options_.vm_timeout);
  if (machine.ok()) {
    counters.update(machine_metrics(*machine));
  } else {
    spdlog::debug("metrics: no counters from the microVM: {}", machine.error().message);
  }
  if (auto r = metrics_file_->write_line(std::move(line), counters, api_metrics_.stores());
      !r.ok()) {
    return prefixed("Internal VMM error", r.error());
  }
  return {};
}

void VmmController::start_metrics_locked() {
  if (!metrics_file_) return;
  if (auto r = flush_metrics_locked(); !r.ok()) spdlog::warn("{}", r.error().message);
  periodic_metrics_ = std::make_unique<PeriodicTask>(options_.metrics_period, [this] {
    std::lock_guard lock(mu_);
    if (!check_running().ok()) return;
    if (auto r = flush_metrics_locked(); !r.ok()) spdlog::warn("{}", r.error().message);
  });
}

Result<void> VmmController::pause() {
  auto began = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (auto r = vm_->pause(options_.vm_timeout); !r.ok()) {
    return prefixed("Internal VMM error", r.error());
  }
  api_metrics_.store_latency("pause_vm", since(began));
  return {};
}

Result<void> VmmController::resume() {
  auto began = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  IGN_TRY(check_running());
  if (auto r = vm_->resume(options_.vm_timeout); !r.ok()) {
    return prefixed("Internal VMM error", r.error());
  }
  api_metrics_.store_latency("resume_vm", since(began));
  return {};
}

void VmmController::count_request(Method method, std::string_view path, int status,
                                  bool deprecated) {
  api_metrics_.count_request(method, path, status, deprecated);
}

void VmmController::record_startup(std::chrono::microseconds wall, std::chrono::microseconds cpu) {
  api_metrics_.set_startup_time(wall, cpu);
}

// --- calls into the running VM ---

Result<void> VmmController::update_vm(std::function<Result<void>(vmm::Machine&)> fn) {
  auto config = std::make_shared<config::VmConfig>();
  auto r = vm_->call(
      [fn = std::move(fn), config](vmm::Machine& m) -> Result<void> {
        IGN_TRY(fn(m));
        *config = m.config();
        return {};
      },
      options_.vm_timeout);
  if (!r.ok()) return r;
  adopt_machine_config(std::move(*config));
  return {};
}

void VmmController::adopt_machine_config(config::VmConfig config) {
  // The logger and metrics belong to this process (a restored machine carries those of the
  // process that took the snapshot); the rest is the machine's.
  config.logger = std::move(config_.logger);
  config.metrics = std::move(config_.metrics);
  config_ = std::move(config);
}

template <typename T>
Result<T> VmmController::query_vm(std::function<Result<T>(vmm::Machine&)> fn,
                                  std::chrono::milliseconds timeout) const {
  // Shared with the task, which may still run after a timeout.
  auto out = std::make_shared<std::optional<T>>();
  auto r = vm_->call(
      [fn = std::move(fn), out](vmm::Machine& m) -> Result<void> {
        IGN_ASSIGN_OR_RETURN(auto value, fn(m));
        *out = std::move(value);
        return {};
      },
      timeout);
  if (!r.ok()) return r.error();
  return std::move(**out);
}

// --- the guest's end ---

void VmmController::on_exit(const Result<vmm::RunOutcome>& outcome) {
  {
    std::lock_guard lock(exit_mu_);
    outcome_ = outcome;
  }
  exit_evt_.signal();
}

std::optional<Result<vmm::RunOutcome>> VmmController::outcome() const {
  std::lock_guard lock(exit_mu_);
  return outcome_;
}

void VmmController::stop() {
  std::lock_guard lock(mu_);
  if (vm_) vm_->stop();
}

}  // namespace ignition::api
