// MachineRunner: a vmm::Machine running on its own thread, acted on from other threads by
// posting tasks to its event loop and waiting (with a deadline) for their results.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "api/running_vm.hpp"

namespace ignition::api {

class MachineRunner final : public RunningVm {
 public:
  // Creates the machine (memory, devices, kernel) and starts Machine::run() on a new thread.
  static Result<std::unique_ptr<MachineRunner>> start(const config::VmConfig& config,
                                                      const vmm::MachineIo& io,
                                                      VmExitCallback on_exit);
  // Runs an already built machine (a restored one), paused from the start if asked.
  static std::unique_ptr<MachineRunner> run_machine(std::unique_ptr<vmm::Machine> machine,
                                                    bool paused, VmExitCallback on_exit);
  // Stops the guest if it still runs and joins its thread.
  ~MachineRunner() override;
  MachineRunner(const MachineRunner&) = delete;
  MachineRunner& operator=(const MachineRunner&) = delete;

  Result<void> pause(std::chrono::milliseconds timeout) override;
  Result<void> resume(std::chrono::milliseconds timeout) override;
  bool paused() const override { return paused_; }
  void stop() override;

  Result<void> call(std::function<Result<void>(vmm::Machine&)> fn,
                    std::chrono::milliseconds timeout) override;

 private:
  explicit MachineRunner(std::unique_ptr<vmm::Machine> machine) : machine_(std::move(machine)) {}
  void run(VmExitCallback on_exit);

  std::unique_ptr<vmm::Machine> machine_;
  std::thread thread_;
  std::atomic<bool> paused_{false};

  std::mutex mu_;
  std::condition_variable cv_;  // a posted call finished, or the machine stopped
  bool finished_ = false;
};

// A VmLauncher that starts real machines with `io` for the console.
VmLauncher machine_launcher(const vmm::MachineIo& io);
// A VmRestorer that builds real machines from snapshots (vmm::Machine::restore): the
// memory file is mem_backend.backend_path for both backends.
VmRestorer machine_restorer(const vmm::MachineIo& io);

}  // namespace ignition::api
