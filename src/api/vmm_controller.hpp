// VmmController: the API's view of the VMM, like Firecracker's rpc_interface. Before boot
// it holds the VmConfig being built (every change validated as a whole before it is kept);
// InstanceStart launches the machine; after that, requests act on the running VM.
// Thread-safe: the API thread calls it, and the VM's thread reports the guest's exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/api_types.hpp"
#include "api/metrics.hpp"
#include "api/running_vm.hpp"
#include "base/event_fd.hpp"
#include "base/fd.hpp"
#include "base/result.hpp"
#include "mmds/data_store.hpp"
#include "vmm/config/instance_info.hpp"
#include "vmm/config/snapshot.hpp"
#include "vmm/config/vm_config.hpp"

namespace ignition::api {

inline constexpr std::string_view kVmmVersion = "0.1.0";
using mmds::kDefaultMmdsLimitBytes;  // the MMDS store lives in src/mmds/

// Firecracker's fault messages for actions in the wrong phase.
inline constexpr std::string_view kNotSupportedPostBoot =
    "The requested operation is not supported after starting the microVM.";
inline constexpr std::string_view kNotSupportedPreBoot =
    "The requested operation is not supported before starting the microVM.";

enum class VmState { kNotStarted, kRunning, kPaused, kStopped };
// "Not started", "Running", "Paused", "Stopped" (the last only until the process exits).
std::string_view to_string(VmState s);

struct ControllerOptions {
  std::string instance_id = "anonymous-instance";
  std::string vmm_version = std::string(kVmmVersion);
  VmLauncher launcher{};  // required
  VmRestorer restorer{};  // for PUT /snapshot/load; unset: loading is refused
  // Applies PUT /logger to the process's logging; unset: the config is only recorded.
  std::function<Result<void>(const config::LoggerConfig&)> apply_logger{};
  std::chrono::milliseconds vm_timeout{10000};         // for calls into the running VM
  std::chrono::milliseconds snapshot_timeout{300000};  // for writing a snapshot
  // Metrics lines are written this often once the VM runs (and once right away).
  std::chrono::milliseconds metrics_period{60000};
  size_t mmds_limit_bytes = mmds::kDefaultMmdsLimitBytes;
  // The MMDS document, shared with the machines the launcher starts (MachineIo::mmds).
  // Unset: the controller makes its own of mmds_limit_bytes.
  std::shared_ptr<mmds::DataStore> mmds_store{};
};

// PATCH /balloon/hinting/start's optional body.
struct BalloonHintingStart {
  bool acknowledge_on_stop = false;
};

class VmmController {
 public:
  static Result<std::unique_ptr<VmmController>> create(ControllerOptions options);
  // Stops a running VM and waits for its thread.
  ~VmmController();
  VmmController(const VmmController&) = delete;
  VmmController& operator=(const VmmController&) = delete;

  // --- reading (any time) ---
  config::InstanceInfo instance_info() const;
  const std::string& vmm_version() const { return options_.vmm_version; }
  config::VmConfig vm_config() const;
  config::MachineConfig machine_config() const;
  VmState state() const;
  Result<config::Balloon> balloon() const;
  nlohmann::json mmds() const;

  // --- pre-boot configuration ---
  // Replaces the whole configuration (--config-file).
  Result<void> configure(const config::VmConfig& config);
  Result<void> put_machine_config(const config::MachineConfig& mc);
  Result<void> patch_machine_config(const config::MachineConfigUpdate& update);
  Result<void> put_boot_source(const config::BootSource& bs);
  Result<void> put_drive(const config::Drive& drive);
  Result<void> put_network_interface(const config::NetworkInterface& net);
  Result<void> put_pmem(const config::Pmem& pmem);
  Result<void> put_vsock(const config::Vsock& vsock);
  Result<void> put_entropy(const config::Entropy& entropy);
  Result<void> put_balloon(const config::Balloon& balloon);
  Result<void> put_logger(const config::LoggerConfig& logger);
  Result<void> put_metrics(const config::MetricsConfig& metrics);
  Result<void> put_serial(const config::SerialConfig& serial);
  Result<void> put_cpu_config(const config::CpuConfig& cpu);
  Result<void> put_mmds_config(const config::MmdsConfig& mmds);
  Result<void> put_memory_hotplug(const config::MemoryHotplugConfig& hotplug);
  Result<void> load_snapshot(const config::SnapshotLoadParams& params);

  // --- post-boot updates ---
  Result<void> patch_drive(const config::PartialDrive& update);
  Result<void> patch_network_interface(const config::PartialNetworkInterface& update);
  Result<void> patch_pmem(const config::PartialPmem& update);
  Result<void> patch_balloon(const config::BalloonUpdate& update);
  Result<config::BalloonStats> balloon_statistics() const;
  Result<void> patch_balloon_statistics(const config::BalloonStatsUpdate& update);
  Result<void> start_balloon_hinting(const BalloonHintingStart& cmd);
  Result<nlohmann::json> balloon_hinting_status() const;
  Result<void> stop_balloon_hinting();
  Result<nlohmann::json> memory_hotplug_status() const;
  Result<void> patch_memory_hotplug(const config::MemoryHotplugSizeUpdate& update);
  Result<void> create_snapshot(const config::SnapshotCreateParams& params);

  // --- MMDS data store (any time) ---
  Result<void> put_mmds(nlohmann::json data);
  Result<void> patch_mmds(const nlohmann::json& patch);

  // --- actions ---
  Result<void> start();  // InstanceStart
  Result<void> send_ctrl_alt_del();
  Result<void> flush_metrics();
  Result<void> pause();
  Result<void> resume();

  // Counts an answered API request for the metrics file.
  void count_request(Method method, std::string_view path, int status, bool deprecated);
  // The process's start-up time until the API socket was ready (api_server metrics).
  void record_startup(std::chrono::microseconds wall, std::chrono::microseconds cpu);

  // --- the guest's end ---
  // Readable once the guest has stopped (or its run failed); outcome() then has a value.
  int exit_fd() const { return exit_evt_.fd(); }
  std::optional<Result<vmm::RunOutcome>> outcome() const;
  // Asks a running VM to stop; its outcome arrives through exit_fd().
  void stop();

 private:
  VmmController(ControllerOptions options, EventFd exit_evt)
      : options_(std::move(options)),
        mmds_(options_.mmds_store ? options_.mmds_store
                                  : std::make_shared<mmds::DataStore>(options_.mmds_limit_bytes)),
        exit_evt_(std::move(exit_evt)) {}

  bool started() const { return vm_ != nullptr; }
  // Callers hold mu_ and have checked check_running().
  // Runs `fn` on the VM's event loop and takes the machine's configuration after it.
  Result<void> update_vm(std::function<Result<void>(vmm::Machine&)> fn);
  // Takes the machine's view of the configuration, keeping this process's logger and metrics.
  void adopt_machine_config(config::VmConfig config);
  // Runs `fn` on the VM's event loop and returns its value.
  template <typename T>
  Result<T> query_vm(std::function<Result<T>(vmm::Machine&)> fn,
                     std::chrono::milliseconds timeout) const;
  Result<void> flush_metrics_locked();
  // After InstanceStart or a snapshot load: a metrics line now and every metrics_period.
  void start_metrics_locked();
  // Validates `candidate` as a whole; on success it becomes the configuration.
  Result<void> commit(config::VmConfig candidate, std::string_view error_prefix);
  void on_exit(const Result<vmm::RunOutcome>& outcome);
  // Callers hold mu_.
  Result<void> check_pre_boot() const;
  Result<void> check_running() const;
  Result<void> check_hinting() const;

  ControllerOptions options_;
  std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();

  mutable std::mutex mu_;  // everything below but the exit state
  config::VmConfig config_{};
  // A boot-specific resource was configured: loading a snapshot is no longer allowed.
  bool boot_path_ = false;
  std::shared_ptr<mmds::DataStore> mmds_;  // thread-safe itself
  std::optional<MetricsFile> metrics_file_;
  std::unique_ptr<RunningVm> vm_;
  std::unique_ptr<PeriodicTask> periodic_metrics_;  // takes mu_ on its own thread

  ApiMetrics api_metrics_;  // thread-safe on its own

  mutable std::mutex exit_mu_;  // written by the VM's thread
  std::optional<Result<vmm::RunOutcome>> outcome_;
  EventFd exit_evt_;
};

}  // namespace ignition::api
