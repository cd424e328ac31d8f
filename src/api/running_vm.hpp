// RunningVm: what the API controller needs from a started microVM, so the controller can be
// tested without KVM. The real one is MachineRunner (a vmm::Machine on its own thread).
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "base/result.hpp"
#include "vmm/config/snapshot.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/machine.hpp"

namespace ignition::api {

class RunningVm {
 public:
  virtual ~RunningVm() = default;

  // Runs `fn` on the VM's event-loop thread, where the Machine may be used freely, and
  // returns its result; fails if it did not run within `timeout` or the VM stopped first.
  // `fn` may still run after a timeout, so it must own what it uses (share results
  // through a shared_ptr). This is how post-boot updates reach devices.
  virtual Result<void> call(std::function<Result<void>(vmm::Machine&)> fn,
                            std::chrono::milliseconds timeout) = 0;
  // Each waits up to `timeout` for the VM's event loop to carry it out.
  virtual Result<void> pause(std::chrono::milliseconds timeout) = 0;
  virtual Result<void> resume(std::chrono::milliseconds timeout) = 0;
  virtual bool paused() const = 0;
  // Asks the VM to end; the exit callback given at launch then reports the outcome.
  virtual void stop() = 0;
};

// Called once, from the VM's own thread, when the guest stops or the run fails.
using VmExitCallback = std::function<void(const Result<vmm::RunOutcome>&)>;

// Builds and starts a VM from a validated configuration.
using VmLauncher = std::function<Result<std::unique_ptr<RunningVm>>(const config::VmConfig&,
                                                                    VmExitCallback on_exit)>;

// A VM built from a snapshot, and the configuration it was built with (the snapshot's,
// with the load's overrides applied).
struct RestoredVm {
  std::unique_ptr<RunningVm> vm;
  config::VmConfig config;
};

// Builds a VM from a snapshot and starts it, paused unless `params.resume_vm`.
using VmRestorer = std::function<Result<RestoredVm>(const config::SnapshotLoadParams& params,
                                                    VmExitCallback on_exit)>;

}  // namespace ignition::api
