// Bad input on the command line or in a config file: one clear line on stderr, exit 1,
// and no VM started.
#include <gtest/gtest.h>

#include <fstream>

#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

ProcessResult run_ignition(std::vector<std::string> args) {
  ProcessOptions options;
  options.argv = {ignition_binary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.timeout = std::chrono::seconds(20);
  auto result = run_process(options);
  EXPECT_TRUE(result.ok());
  return result.ok() ? *result : ProcessResult{};
}

std::string write_temp(const std::string& name, const std::string& content) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

void expect_error(const ProcessResult& r, const std::string& needle) {
  EXPECT_TRUE(r.exited) << r.describe();
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(needle), std::string::npos) << "expected '" << needle << "' in:\n"
                                                      << r.output;
  EXPECT_EQ(r.output.find("IGN-BEGIN"), std::string::npos) << "no guest may have run";
}

TEST(CliErrors, SeccompFilterIsRefusedNotIgnored) {
  expect_error(run_ignition({"--no-api", "--seccomp-filter", "/tmp/filter.bpf"}),
               "seccomp filters are not supported yet");
}

TEST(CliErrors, RestoreOfAMissingSnapshot) {
  expect_error(
      run_ignition({"--store", ::testing::TempDir() + "ign-none", "restore", "x", "--diff"}),
      "no snapshot 'x'");
}

TEST(CliErrors, MissingKernelFile) {
  expect_error(run_ignition({"run", "--kernel", "/nonexistent/vmlinux"}), "/nonexistent/vmlinux");
}

TEST(CliErrors, KernelInNoKnownFormat) {
  auto path = write_temp("not-a-kernel", std::string(8192, 'x'));
  expect_error(run_ignition({"run", "--kernel", path}), "not a kernel image");
}

TEST(CliErrors, MissingInitrd) {
  expect_error(run_ignition({"run", "--kernel", guest_image("ignition-test.elf"), "--initrd",
                             "/nonexistent/initrd"}),
               "/nonexistent/initrd");
}

TEST(CliErrors, OutOfRangeVcpusAndMemory) {
  expect_error(run_ignition({"run", "--kernel", guest_image("ignition-test.elf"), "--vcpus", "0"}),
               "--vcpus");
  expect_error(
      run_ignition({"run", "--kernel", guest_image("ignition-test.elf"), "--mem-mib", "abc"}),
      "--mem-mib");
}

TEST(CliErrors, MemoryTheHostCannotMap) {
  // 256 TiB is more than a 47-bit user address space can map.
  auto r =
      run_ignition({"run", "--kernel", guest_image("ignition-test.elf"), "--mem-mib", "268435456"});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("ignition: guest memory: cannot map"), std::string::npos) << r.output;
}

TEST(CliErrors, ConfigFileMalformedJson) {
  auto path = write_temp("bad.json", "{\"boot-source\": {");
  expect_error(run_ignition({"--config-file", path}), "bad.json");
}

TEST(CliErrors, ConfigFileUnknownField) {
  auto path = write_temp("unknown.json", R"({"boot-source": {"kernel_image_path": ")" +
                                             guest_image("ignition-test.elf") +
                                             R"("}, "machine-config": {"vcpu_count": 1,
                                             "mem_size_mib": 64, "turbo": true}})");
  expect_error(run_ignition({"--config-file", path}), "turbo");
}

TEST(CliErrors, ConfigFileWrongType) {
  auto path = write_temp("type.json", R"({"boot-source": {"kernel_image_path": ")" +
                                          guest_image("ignition-test.elf") +
                                          R"("}, "machine-config": {"vcpu_count": "two",
                                          "mem_size_mib": 64}})");
  expect_error(run_ignition({"--config-file", path}), "vcpu_count");
}

TEST(CliErrors, ConfigFileBootsTheGuest) {
  auto path = write_temp("good.json", R"({"boot-source": {"kernel_image_path": ")" +
                                          guest_image("ignition-test.elf") +
                                          R"(", "boot_args": "ign.tests=boot"},
                                          "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}})");
  auto r = run_ignition({"--config-file", path});
  EXPECT_TRUE(r.exited_ok()) << r.output;
  EXPECT_NE(r.output.find("IGN-PASS boot"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ignition::test
