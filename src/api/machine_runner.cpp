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
  std::unique_ptr<MachineRunner> runner(new MachineRunner(std::move(machine)));
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

}  // namespace ignition::api
