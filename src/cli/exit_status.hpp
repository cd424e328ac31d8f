// The process's exit status, the same whichever way ignition runs (CLI, config file, API):
// 0 when the guest shut down or rebooted, 1 for an error of ignition's, 2 when the guest
// stopped on a fault (triple fault, crash report).
#pragma once

#include <string>

#include "base/result.hpp"
#include "vmm/machine.hpp"

namespace ignition::cli {

inline constexpr int kExitOk = 0, kExitError = 1, kExitGuestFault = 2;

// Prints "ignition: <message>" on stderr and returns kExitError.
int fail(const std::string& message);
// Logs how the VM ended and returns its exit status.
int exit_status(const Result<vmm::RunOutcome>& outcome);

}  // namespace ignition::cli
