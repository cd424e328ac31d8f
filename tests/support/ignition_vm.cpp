#include "support/ignition_vm.hpp"

#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "support/paths.hpp"

namespace ignition::test {

std::string VmRun::explain() const {
  return process.describe() + "\n" + report.summary() + "\n--- console:\n" + process.output;
}

std::string test_temp_path(const std::string& name) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return ::testing::TempDir() + "ign-" + (info ? info->name() : "test") + "-" +
         std::to_string(::getpid()) + "-" + name;
}

std::string guest_vm_config(const GuestVm& vm) {
  std::string boot_args = "ign.tests=" + vm.tests;
  if (!vm.cmdline_extra.empty()) boot_args += " " + vm.cmdline_extra;
  std::string config = R"({"boot-source": {"kernel_image_path": ")" +
                       guest_image("ignition-test.elf") + R"(", "boot_args": ")" + boot_args +
                       R"("}, "machine-config": {"vcpu_count": 1, "mem_size_mib": )" +
                       std::to_string(vm.mem_mib) + "}";
  if (!vm.devices.empty()) config += ", " + vm.devices;
  return config + "}";
}

Result<VmRun> boot_guest_vm(const GuestVm& vm, const std::string& config_path) {
  {
    std::ofstream out(config_path);
    out << guest_vm_config(vm);
    if (!out) return err("cannot write {}", config_path);
  }
  ProcessOptions options;
  options.argv = vm.prefix;
  options.argv.insert(options.argv.end(), {ignition_binary(), "--config-file", config_path});
  if (!vm.api_sock.empty()) options.argv.insert(options.argv.end(), {"--api-sock", vm.api_sock});
  options.on_line = vm.on_line;
  options.timeout = vm.timeout;
  IGN_ASSIGN_OR_RETURN(ProcessResult process, run_process(options));
  VmRun run{std::move(process), {}};
  run.report = parse_guest_report(run.process.output);
  return run;
}

}  // namespace ignition::test
