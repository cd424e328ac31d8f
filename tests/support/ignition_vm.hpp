// Boots the test guest (guest/) under the ignition binary from a Firecracker-style config
// file, optionally with the API socket live, and parses the guest's report.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "support/guest_report.hpp"
#include "support/process.hpp"

namespace ignition::test {

struct GuestVm {
  std::string devices;        // more members of the config object: R"("vsock": {...})"
  std::string tests;          // ign.tests=
  std::string cmdline_extra;  // more kernel command-line words
  int mem_mib = 128;
  std::string api_sock;             // non-empty: --api-sock <api_sock> as well
  std::vector<std::string> prefix;  // wraps the command (e.g. ip netns exec <ns>)
  LineHandler on_line;              // sees every console line as it arrives
  std::chrono::milliseconds timeout{60000};
};

struct VmRun {
  ProcessResult process;
  GuestReport report;
  // The exit, the report's summary and the whole console, for assertion messages.
  std::string explain() const;
};

// A path in the test temp dir unique to this process and test: CTest runs the tests of one
// file in parallel processes.
std::string test_temp_path(const std::string& name);

// The config file's text for `vm`.
std::string guest_vm_config(const GuestVm& vm);
// Writes the config to `config_path` and runs ignition on it until the guest stops.
Result<VmRun> boot_guest_vm(const GuestVm& vm, const std::string& config_path);

}  // namespace ignition::test
