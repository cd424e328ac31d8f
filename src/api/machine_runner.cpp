// MachineRunner: the machine's thread and calls into its event loop.
#include "api/machine_runner.hpp"

namespace ignition::api {

namespace {

struct CallState {
  bool done = false;
  Result<void> result{};
};

}  // namespace

Result<std::unique_ptr<MachineRunner>> MachineRunner::start(const config::VmConfig& config,
                                                            const vmm::MachineIo& io,
                                                            VmExitCallback on_exit) {
  IGN_ASSIGN_OR_RETURN(auto machine, vmm::Machine::create(config, io));
  return run_machine(std::move(machine), false, std::move(on_exit));
}

std::unique_ptr<MachineRunner> MachineRunner::run_machine(std::unique_ptr<vmm::Machine> machine,
                                                          bool paused, VmExitCallback on_exit) {
  if (paused) machine->start_paused();
  std::unique_ptr<MachineRunner> runner(new MachineRunner(std::move(machine)));
  runner->paused_ = paused;
  runner->thread_ = std::thread([r = runner.get(), cb = std::move(on_exit)] { r->run(cb); });
  return runner;
}

void MachineRunner::run(VmExitCallback on_exit) {
  Result<vmm::RunOutcome> outcome = machine_->run();
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  cv_.notify_all();
  if (on_exit) on_exit(outcome);
}

MachineRunner::~MachineRunner() {
  stop();
  if (thread_.joinable()) thread_.join();
}

void MachineRunner::stop() {
  machine_->stop();
}

Result<void> MachineRunner::call(std::function<Result<void>(vmm::Machine&)> fn,
                                 std::chrono::milliseconds timeout) {
  auto state = std::make_shared<CallState>();
  {
    std::lock_guard lock(mu_);
    if (finished_) return err("the microVM has stopped");
  }
  // The task runs inside Machine::run(), which returns before this runner is destroyed
  // (the destructor joins the thread), so `this` is alive whenever the task runs.
  machine_->post([this, state, fn = std::move(fn)] {
    Result<void> r = fn(*machine_);
    {
      std::lock_guard lock(mu_);
      state->result = std::move(r);
      state->done = true;
    }
    cv_.notify_all();
  });
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, timeout, [&] { return state->done || finished_; })) {
    return err("timed out after {} ms waiting for the microVM's event loop", timeout.count());
  }
  if (!state->done) return err("the microVM has stopped");
  return state->result;
}

Result<void> MachineRunner::pause(std::chrono::milliseconds timeout) {
  return call(
      [this](vmm::Machine& m) -> Result<void> {
        m.pause();
        paused_ = true;
        return {};
      },
      timeout);
}

Result<void> MachineRunner::resume(std::chrono::milliseconds timeout) {
  return call(
      [this](vmm::Machine& m) -> Result<void> {
        m.resume();
        paused_ = false;
        return {};
      },
      timeout);
}

VmLauncher machine_launcher(const vmm::MachineIo& io) {
  return [io](const config::VmConfig& config,
              VmExitCallback on_exit) -> Result<std::unique_ptr<RunningVm>> {
    IGN_ASSIGN_OR_RETURN(auto runner, MachineRunner::start(config, io, std::move(on_exit)));
    return std::unique_ptr<RunningVm>(std::move(runner));
  };
}

VmRestorer machine_restorer(const vmm::MachineIo& io) {
  return
      [io](const config::SnapshotLoadParams& params, VmExitCallback on_exit) -> Result<RestoredVm> {
        vmm::SnapshotPaths paths{params.snapshot_path, params.mem_backend.backend_path};
        vmm::RestoreOptions options;
        // Uffd: backend_path is the page-fault handler's socket, and the memory file is the
        // handler's, not ours.
        if (params.mem_backend.backend_type == config::MemBackendType::kUffd) {
          options.memory_backend = vmm::RestoreOptions::MemoryBackend::Uffd;
          options.uffd_socket = params.mem_backend.backend_path;
          paths.memory.clear();
        }
        for (const auto& o : params.network_overrides)
          options.network_overrides.emplace_back(o.iface_id, o.host_dev_name);
        options.track_dirty_pages = params.track_dirty_pages;
        if (params.vsock_override) options.vsock_uds_path = params.vsock_override->uds_path;
        if (params.clock_realtime) options.clock = hv::ClockRestore::AdvanceByWallClock;
        if (params.huge_pages != config::SnapshotHugePages::kSnapshot)
          options.huge_pages = std::string(config::to_string(params.huge_pages));
        IGN_ASSIGN_OR_RETURN(auto machine, vmm::Machine::restore(paths, io, options));
        RestoredVm restored{nullptr, machine->config()};
        bool paused = !params.resume_vm;
        auto runner = MachineRunner::run_machine(std::move(machine), paused, std::move(on_exit));
        // Parked from the start when Machine::run() honours start_paused(); this pause is then
        // a no-op, and otherwise catches the vCPUs as soon as the event loop runs.
        if (paused) IGN_TRY(runner->pause(std::chrono::seconds(10)));
        restored.vm = std::move(runner);
        return restored;
      };
}

}  // namespace ignition::api
