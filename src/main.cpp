// ignition: the command line. Parses arguments, builds the machine, runs it, and turns
// the outcome into an exit status: 0 when the guest rebooted or powered off, 1 for bad
// configuration or setup errors, 2 when the guest hit something the VMM cannot handle.
#include <fcntl.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "api/api_main.hpp"
#include "cli/exit_status.hpp"
#include "cli/store_commands.hpp"
#include "cli/terminal.hpp"
#include "cli/uffd_handler.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/machine.hpp"
#include "vmm/snapshot_store.hpp"

namespace {

using namespace ignition;

using cli::exit_status;
using cli::fail;
using cli::kExitError;
using cli::kExitOk;

// Runs a machine to its end and turns the outcome into an exit status.
int run_to_end(Result<std::unique_ptr<vmm::Machine>> machine) {
  if (!machine.ok()) return fail(machine.error().message);
  cli::RawTerminal raw(STDIN_FILENO);
  auto outcome = (*machine)->run();
  if (outcome.ok() && !(*machine)->snapshot_error().empty())
    return fail((*machine)->snapshot_error());
  return exit_status(outcome);
}

vmm::MachineIo console_io(std::chrono::steady_clock::time_point start, bool reset_port) {
  vmm::MachineIo io;
  io.start = start;
  io.reset_port = reset_port;
  io.console_in = STDIN_FILENO;
  io.console_out = STDOUT_FILENO;
  return io;
}

// The options that describe a machine on the command line (run, snapshot).
struct MachineOptions {
  config::VmConfig config;
  std::string initrd, cmdline, config_file;

  void add_to(CLI::App* app, bool kernel_required) {
    auto* kernel = app->add_option("--kernel", config.boot_source.kernel_image_path,
                                   "Kernel image: ELF vmlinux, PVH ELF or bzImage")
                       ->check(CLI::ExistingFile);
    if (kernel_required) kernel->required();
    app->add_option("--initrd", initrd, "Initial ramdisk")->check(CLI::ExistingFile);
    app->add_option("--cmdline", cmdline, "Kernel command line");
    app->add_option("--vcpus", config.machine_config.vcpu_count, "Number of vCPUs")
        ->check(CLI::Range(1, 32));
    app->add_option("--mem-mib", config.machine_config.mem_size_mib, "Guest RAM in MiB")
        ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));
  }
  // The configuration: from --config-file if given, else from the flags.
  Result<config::VmConfig> resolve() {
    if (!config_file.empty()) return config::load_vm_config_file(config_file);
    if (config.boot_source.kernel_image_path.empty()) return err("give --kernel or --config-file");
    if (!initrd.empty()) config.boot_source.initrd_path = initrd;
    if (!cmdline.empty()) config.boot_source.boot_args = cmdline;
    IGN_TRY(config::validate_vm_config(config));
    return config;
  }
};

Result<void> setup_logging(const std::string& level, const std::string& path) {
  if (!path.empty()) {
    try {
      spdlog::set_default_logger(spdlog::basic_logger_mt("ignition", path));
    } catch (const spdlog::spdlog_ex& e) {
      return err("--log-path {}: {}", path, e.what());
    }
  } else {
    spdlog::set_default_logger(spdlog::stderr_color_mt("ignition"));
  }
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") return err("--level: unknown level '{}'", level);
  spdlog::set_level(lvl);
  spdlog::set_pattern("[%H:%M:%S.%e] [%l] %v");
  spdlog::flush_on(spdlog::level::trace);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  auto start = std::chrono::steady_clock::now();
  // A closed stdin/stdout/stderr would be reused by the next fd we open (a socket, an
  // eventfd) and then read or written as the console: park /dev/null on them instead.
  for (int fd = 0; fd <= 2; ++fd)
    if (::fcntl(fd, F_GETFD) < 0 && ::open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY) != fd)
      return kExitError;
  CLI::App app{"ignition: a microVM monitor with millisecond clones", "ignition"};
  app.set_version_flag("--version", "ignition 0.1.0");
  std::string config_file, level = "info", log_path;
  app.add_option("--config-file", config_file, "Start a VM from a Firecracker-style JSON file")
      ->check(CLI::ExistingFile);
  app.add_option("--level", level, "Log level: trace, debug, info, warn, error, off");
  app.add_option("--log-path", log_path, "Write logs to this file instead of stderr");
  std::string api_sock, instance_id = "anonymous-instance";
  bool no_api = false;
  app.add_option("--api-sock", api_sock,
                 "Serve the Firecracker-compatible API on this Unix socket");
  app.add_option("--id", instance_id, "The microVM's id, reported by GET /");
  std::string metrics_path;
  app.add_option("--metrics-path", metrics_path,
                 "Write Firecracker-style metrics (JSON lines) to this file or FIFO");
  app.add_flag("--no-api", no_api, "Start from --config-file without an API socket");
  bool reset_port = false;
  app.add_flag("--reset-port", reset_port,
               "Give the guest the checkpoint/reset port (for fuzzing harnesses and tests)");

  // Firecracker's flags that ignition takes for compatibility: the boot timer is always on;
  // seccomp filters are not installed yet (see docs/api.md), so --no-seccomp changes nothing
  // and --seccomp-filter is refused rather than silently ignored.
  bool boot_timer = false, no_seccomp = false;
  std::string seccomp_filter;
  app.add_flag("--boot-timer", boot_timer, "Accepted for Firecracker compatibility (always on)");
  app.add_flag("--no-seccomp", no_seccomp, "Accepted for Firecracker compatibility");
  app.add_option("--seccomp-filter", seccomp_filter, "Not supported yet: refused");

  std::string store_root = "ignition-store";
  app.add_option("--store", store_root, "Snapshot store directory (snapshots/<name>/...)");

  MachineOptions run_options;
  auto* run = app.add_subcommand("run", "Boot a kernel given on the command line");
  run_options.add_to(run, true);

  MachineOptions snap_options;
  std::string snap_name;
  bool keep_running = false;
  auto* snap = app.add_subcommand(
      "snapshot",
      "Boot, and snapshot the guest when it reaches its ready point (the boot-time marker)");
  snap->add_option("name", snap_name, "Name of the snapshot in the store")->required();
  snap_options.add_to(snap, false);
  snap->add_option("--config-file", snap_options.config_file, "Firecracker-style JSON config")
      ->check(CLI::ExistingFile);
  snap->add_flag("--keep-running", keep_running, "Let the guest run on after the snapshot");

  std::string restore_name, child_name;
  bool child_diff = false;
  auto* restore = app.add_subcommand("restore", "Run a guest from a snapshot in the store");
  restore->add_option("name", restore_name, "Name of the snapshot in the store")->required();
  restore->add_option("--snapshot", child_name,
                      "Snapshot the restored guest again at its next ready point, as this name");
  restore->add_flag("--diff", child_diff,
                    "With --snapshot: save only the pages written since the restore (a diff "
                    "snapshot layered on its parent)");
  std::string restore_uffd_socket;
  restore->add_option("--uffd-socket", restore_uffd_socket,
                      "Have the page-fault handler listening on this socket fill guest memory "
                      "(the Uffd backend, see docs/uffd.md) instead of mapping the memory file");
  bool restore_clock_realtime = false;
  restore->add_flag("--clock-realtime", restore_clock_realtime,
                    "Move the guest clock on by the time since the snapshot (else it resumes "
                    "where it was saved)");
  std::string restore_huge_pages;
  restore
      ->add_option("--huge-pages", restore_huge_pages,
                   "Pages for the restored RAM instead of the snapshot's setting (a 2M "
                   "snapshot restores on 2M pages only with --uffd-socket; None or "
                   "Transparent put it on 4 KiB pages)")
      ->check(CLI::IsMember({"None", "Transparent", "2M"}));

  std::string clone_name;
  uint32_t clone_count = 1;
  bool detach = false;
  auto* clone = app.add_subcommand(
      "clone",
      "Start N clones of a snapshot, each its own process with its own instance directory");
  clone->add_option("name", clone_name, "Name of the snapshot in the store")->required();
  clone->add_option("-n,--count", clone_count, "How many clones")->check(CLI::Range(1, 100000));
  clone->add_flag("--detach", detach, "Return once they are started instead of waiting");
  std::string clone_huge_pages;
  clone
      ->add_option("--huge-pages", clone_huge_pages,
                   "Pages for the clones' RAM instead of the snapshot's setting (None or "
                   "Transparent: 4 KiB pages, which a 2M base needs to be cloned)")
      ->check(CLI::IsMember({"None", "Transparent"}));

  std::string instance_id_arg;
  auto* instance = app.add_subcommand("instance", "Run one instance made by clone (its restore)");
  instance->add_option("id", instance_id_arg, "Instance id (instances/<id>/)")->required();

  auto* store_cmd = app.add_subcommand("store", "Inspect and tidy the snapshot store");
  store_cmd->require_subcommand(1);
  auto* store_list = store_cmd->add_subcommand("list", "List snapshots and instances");
  auto* store_gc = store_cmd->add_subcommand(
      "gc", "Remove instances whose process has ended and snapshots that never completed");
  std::string flatten_name;
  auto* store_flatten =
      store_cmd->add_subcommand("flatten", "Turn a diff snapshot into a full one in place");
  store_flatten->add_option("name", flatten_name, "Name of the snapshot")->required();

  std::string uffd_socket, uffd_memory;
  auto* uffd_handler = app.add_subcommand(
      "uffd-handler",
      "Serve a restored guest's page faults from a snapshot memory file (the Uffd backend)");
  uffd_handler->add_option("--socket", uffd_socket, "Unix socket to listen on (the backend_path)")
      ->required();
  uffd_handler->add_option("--memory", uffd_memory, "The snapshot's memory file")
      ->required()
      ->check(CLI::ExistingFile);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitError;
  }
  if (auto logging = setup_logging(level, log_path); !logging.ok())
    return fail(logging.error().message);
  if (!seccomp_filter.empty())
    return fail("--seccomp-filter: custom seccomp filters are not supported yet");
  vmm::SnapshotStore store(store_root);
  if (*uffd_handler) return cli::uffd_handler_command(uffd_socket, uffd_memory);

  if (!api_sock.empty() || no_api) {
    api::ApiOptions options;
    options.api_sock = api_sock;
    if (!config_file.empty()) options.config_file = config_file;
    options.id = instance_id;
    if (!metrics_path.empty()) options.metrics_path = metrics_path;
    options.no_api = no_api;
    options.start = start;
    return api::run_api_server(options);
  }

  if (*run) {
    auto config = run_options.resolve();
    if (!config.ok()) return fail(config.error().message);
    return run_to_end(vmm::Machine::create(*config, console_io(start, reset_port)));
  }
  if (*snap) {
    auto config = snap_options.resolve();
    if (!config.ok()) return fail(config.error().message);
    auto paths = store.create(snap_name);
    if (!paths.ok()) return fail(paths.error().message);
    auto io = console_io(start, reset_port);
    io.snapshot_at_marker = *paths;
    io.keep_running_after_snapshot = keep_running;
    io.after_snapshot = [&] { return store.seal(snap_name, *config, std::nullopt); };
    return run_to_end(vmm::Machine::create(*config, io));
  }
  if (*restore) {
    auto paths = store.find(restore_name);
    if (!paths.ok()) return fail(paths.error().message);
    auto io = console_io(start, reset_port);
    vmm::RestoreOptions options;
    vmm::Machine* restored = nullptr;
    if (!restore_uffd_socket.empty()) {
      options.memory_backend = vmm::RestoreOptions::MemoryBackend::Uffd;
      options.uffd_socket = restore_uffd_socket;
    }
    if (restore_clock_realtime) options.clock = hv::ClockRestore::AdvanceByWallClock;
    if (!restore_huge_pages.empty()) options.huge_pages = restore_huge_pages;
    if (!child_name.empty()) {
      auto child = store.create(child_name);
      if (!child.ok()) return fail(child.error().message);
      io.snapshot_at_marker = *child;
      io.snapshot_kind = child_diff ? vmm::SnapshotKind::Diff : vmm::SnapshotKind::Full;
      io.after_snapshot = [&] {
        return store.seal(child_name, restored->config(),
                          child_diff ? std::optional(restore_name) : std::nullopt);
      };
      options.track_dirty_pages = child_diff;
    } else if (child_diff) {
      return fail("--diff needs --snapshot <name>");
    }
    auto machine = vmm::Machine::restore(*paths, io, options);
    if (machine.ok()) restored = machine->get();
    return run_to_end(std::move(machine));
  }
  if (*clone)
    return cli::clone_command(
        store, clone_name, clone_count, detach,
        clone_huge_pages.empty() ? std::nullopt : std::optional(clone_huge_pages));
  if (*instance) {
    auto plan = store.load_instance(instance_id_arg);
    if (!plan.ok()) return fail(plan.error().message);
    return run_to_end(
        vmm::Machine::restore(plan->base, console_io(start, reset_port), plan->options));
  }
  if (*store_list) return cli::store_list_command(store);
  if (*store_gc) return cli::store_gc_command(store);
  if (*store_flatten) return cli::store_flatten_command(store, flatten_name);
  if (!config_file.empty()) {
    auto config = config::load_vm_config_file(config_file);
    if (!config.ok()) return fail(config.error().message);
    return run_to_end(vmm::Machine::create(*config, console_io(start, reset_port)));
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return kExitError;
}
