// run_api_server: ignition's Firecracker-style mode. Serves the API on a Unix socket, builds
// the VM from API calls or a config file, and returns when the guest stops.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

namespace ignition::api {

struct ApiOptions {
  std::string api_sock{};                  // required unless no_api
  std::optional<std::string> config_file;  // configure and start the VM from this file
  std::string id = "anonymous-instance";   // the instance id GET / reports
  bool no_api = false;                     // no socket; needs config_file
  // --metrics-path: the metrics file or FIFO, as if set by PUT /metrics before anything else.
  std::optional<std::string> metrics_path;
  size_t max_body_bytes = 1 << 20;
  int console_in = STDIN_FILENO;  // the guest's serial console
  int console_out = STDOUT_FILENO;
  // SIGINT and SIGTERM stop the VM and end the server cleanly (socket removed).
  bool handle_signals = true;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
};

// Exit status as the `run` path: 0 when the guest rebooted or powered off (or a signal
// ended the server), 1 for configuration and setup errors, 2 when the guest hit
// something the VMM cannot handle. Errors go to stderr as "ignition: <message>".
int run_api_server(const ApiOptions& options);

}  // namespace ignition::api
