// run_api_server: wiring the controller, the router and the HTTP server, then waiting for
// the guest's end or a signal.
#include "api/api_main.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>

#include <cstdio>

#include <spdlog/spdlog.h>

#include "api/http_server.hpp"
#include "api/log_config.hpp"
#include "api/machine_runner.hpp"
#include "api/router.hpp"
#include "api/vmm_controller.hpp"
#include "base/fd.hpp"
#include "cli/exit_status.hpp"
#include "cli/terminal.hpp"

namespace ignition::api {

namespace {

using cli::exit_status;
using cli::fail;
using cli::kExitOk;

// SIGINT/SIGTERM blocked in this thread (and so in every thread started after) and read
// from a signalfd; the old mask comes back on destruction.
class SignalCatcher {
 public:
  explicit SignalCatcher(bool enabled) {
    if (!enabled) return;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (::pthread_sigmask(SIG_BLOCK, &set, &saved_) != 0) return;
    active_ = true;
    fd_.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  ~SignalCatcher() {
    if (active_) ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;
  int fd() const { return fd_.get(); }

 private:
  sigset_t saved_{};
  bool active_ = false;
  UniqueFd fd_;
};

// Firecracker's rule for --id: 1 to 64 ASCII letters, digits and hyphens.
Result<void> validate_instance_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return err("Invalid instance ID: must be 1 to 64 characters");
  for (char c : id) {
    bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) return err("Invalid instance ID: invalid character '{}'", c);
  }
  return {};
}

std::chrono::microseconds process_cpu_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::nanoseconds(ts.tv_nsec));
}

}  // namespace

int run_api_server(const ApiOptions& options) {
  if (options.no_api && !options.config_file) return fail("--no-api needs --config-file");
  if (!options.no_api && options.api_sock.empty()) return fail("--api-sock needs a path");
  if (auto valid = validate_instance_id(options.id); !valid.ok()) {
    return fail(valid.error().message);
  }

  SignalCatcher signals(options.handle_signals);
  ControllerOptions controller_options;
  // One MMDS document: the API writes it, the machine's net devices serve it.
  controller_options.mmds_store =
      std::make_shared<mmds::DataStore>(controller_options.mmds_limit_bytes);
  vmm::MachineIo io;
  io.mmds = controller_options.mmds_store;
  io.console_in = options.console_in;
  io.console_out = options.console_out;
  io.start = options.start;
  controller_options.instance_id = options.id;
  controller_options.launcher = machine_launcher(io);
  controller_options.restorer = machine_restorer(io);
  controller_options.apply_logger = apply_logger_config;
  auto controller = VmmController::create(std::move(controller_options));
  if (!controller.ok()) return fail(controller.error().message);

  if (options.config_file) {
    auto config = config::load_vm_config_file(*options.config_file);
    if (!config.ok()) return fail(config.error().message);
    if (auto r = (*controller)->configure(*config); !r.ok()) return fail(r.error().message);
  }
  if (options.metrics_path) {
    config::MetricsConfig metrics;
    metrics.metrics_path = *options.metrics_path;
    if (auto r = (*controller)->put_metrics(metrics); !r.ok()) return fail(r.error().message);
  }

  Router router(**controller);
  std::unique_ptr<HttpServer> server;
  if (!options.no_api) {
    HttpServerOptions server_options;
    server_options.max_body_bytes = options.max_body_bytes;
    auto started = HttpServer::start(
        options.api_sock, [&router](const ApiRequest& r) { return router.handle(r); },
        server_options);
    if (!started.ok()) return fail(started.error().message);
    server = std::move(started).value();
  }
  (*controller)
      ->record_startup(std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - options.start),
                       process_cpu_time());

  cli::RawTerminal raw(options.console_in);
  if (options.config_file) {
    if (auto r = (*controller)->start(); !r.ok()) return fail(r.error().message);
  }

  // Wait for the guest to stop or a signal; requests are served meanwhile on the API thread.
  bool signalled = false;
  while (!(*controller)->outcome() && !signalled) {
    pollfd fds[2] = {{(*controller)->exit_fd(), POLLIN, 0}, {signals.fd(), POLLIN, 0}};
    int n = ::poll(fds, signals.fd() >= 0 ? 2 : 1, -1);
    if (n < 0 && errno != EINTR) return fail(fmt::format("poll: {}", errno_string()));
    if (n > 0 && (fds[1].revents & POLLIN)) {
      signalfd_siginfo info{};
      if (::read(signals.fd(), &info, sizeof(info)) == sizeof(info)) {
        spdlog::info("received signal {}, shutting down", info.ssi_signo);
        signalled = true;
      }
    }
  }
  if (server) server->stop();
  if (signalled) {
    (*controller)->stop();
    controller->reset();  // joins the VM's thread
    return kExitOk;
  }
  return exit_status(*(*controller)->outcome());
}

}  // namespace ignition::api
