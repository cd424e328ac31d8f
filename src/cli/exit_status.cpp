#include "cli/exit_status.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>

namespace ignition::cli {

int fail(const std::string& message) {
  std::fprintf(stderr, "ignition: %s\n", message.c_str());
  return kExitError;
}

int exit_status(const Result<vmm::RunOutcome>& outcome) {
  if (!outcome.ok()) return fail(outcome.error().message);
  switch (outcome->kind) {
    case vmm::RunOutcome::Kind::Reset:
    case vmm::RunOutcome::Kind::Shutdown:
      spdlog::info("VM stopped: {}", outcome->detail);
      return kExitOk;
    case vmm::RunOutcome::Kind::Fatal:
      std::fprintf(stderr, "ignition: guest stopped: %s\n", outcome->detail.c_str());
      return kExitGuestFault;
  }
  return kExitError;
}

}  // namespace ignition::cli
