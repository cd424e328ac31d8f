// ignition: the command line. Parses arguments, builds the machine, runs it, and turns
// the outcome into an exit status: 0 when the guest rebooted or powered off, 1 for bad
// configuration or setup errors, 2 when the guest hit something the VMM cannot handle.
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "cli/terminal.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/machine.hpp"

namespace {

using namespace ignition;

constexpr int kExitOk = 0, kExitError = 1, kExitGuestFault = 2;

int fail(const std::string& message) {
  std::fprintf(stderr, "ignition: %s\n", message.c_str());
  return kExitError;
}

int run_machine(const config::VmConfig& config, std::chrono::steady_clock::time_point start) {
  vmm::MachineIo io;
  io.start = start;
  io.console_in = STDIN_FILENO;
  io.console_out = STDOUT_FILENO;
  auto machine = vmm::Machine::create(config, io);
  if (!machine.ok()) return fail(machine.error().message);
  spdlog::debug("kernel {} ({}), entry {:#x}, cmdline \"{}\"", config.boot_source.kernel_image_path,
                (*machine)->kernel().format, (*machine)->kernel().entry, (*machine)->cmdline());
  cli::RawTerminal raw(STDIN_FILENO);
  auto outcome = (*machine)->run();
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
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  auto start = std::chrono::steady_clock::now();
  CLI::App app{"ignition: a microVM monitor with millisecond clones", "ignition"};
  app.set_version_flag("--version", "ignition 0.1.0");
  std::string config_file, level = "info", log_path;
  app.add_option("--config-file", config_file, "Start a VM from a Firecracker-style JSON file")
      ->check(CLI::ExistingFile);
  app.add_option("--level", level, "Log level: trace, debug, info, warn, error, off");
  app.add_option("--log-path", log_path, "Write logs to this file instead of stderr");

  config::VmConfig run_config;
  auto* run = app.add_subcommand("run", "Boot a kernel given on the command line");
  run->add_option("--kernel", run_config.boot_source.kernel_image_path,
                  "Kernel image: ELF vmlinux, PVH ELF or bzImage")
      ->required()
      ->check(CLI::ExistingFile);
  std::string initrd, cmdline;
  run->add_option("--initrd", initrd, "Initial ramdisk")->check(CLI::ExistingFile);
  run->add_option("--cmdline", cmdline, "Kernel command line");
  run->add_option("--vcpus", run_config.machine_config.vcpu_count, "Number of vCPUs")
      ->check(CLI::Range(1, 32));
  run->add_option("--mem-mib", run_config.machine_config.mem_size_mib, "Guest RAM in MiB")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 32));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitError;
  }
  if (auto logging = setup_logging(level, log_path); !logging.ok())
    return fail(logging.error().message);

  if (*run) {
    if (!initrd.empty()) run_config.boot_source.initrd_path = initrd;
    if (!cmdline.empty()) run_config.boot_source.boot_args = cmdline;
    if (auto valid = config::validate_vm_config(run_config); !valid.ok())
      return fail(valid.error().message);
    return run_machine(run_config, start);
  }
  if (!config_file.empty()) {
    auto config = config::load_vm_config_file(config_file);
    if (!config.ok()) return fail(config.error().message);
    return run_machine(*config, start);
  }
  std::fprintf(stderr, "%s", app.help().c_str());
  return kExitError;
}
