// Boots the test guests under ignition and checks what they report from inside: every
// kernel format, the command line, e820, initrd, ACPI, SMP, timer and serial interrupts,
// kvmclock, serial input, and every way a VM can end.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

struct Run {
  ProcessResult process;
  GuestReport report;
};

Run run_ignition(std::vector<std::string> args, LineHandler on_line = nullptr) {
  ProcessOptions options;
  options.argv = {ignition_binary()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.on_line = std::move(on_line);
  options.timeout = std::chrono::seconds(60);
  auto result = run_process(options);
  EXPECT_TRUE(result.ok()) << (result.ok() ? "" : result.error().message);
  if (!result.ok()) return {};
  return {*result, parse_guest_report(result->output)};
}

Run boot(const std::string& image, const std::string& cmdline, int vcpus = 2, int mem_mib = 128) {
  return run_ignition({"run", "--kernel", guest_image(image), "--vcpus", std::to_string(vcpus),
                       "--mem-mib", std::to_string(mem_mib), "--cmdline", cmdline});
}

struct FormatCase {
  std::string image;
  std::string entry;
};

class EveryFormat : public ::testing::TestWithParam<FormatCase> {};

TEST_P(EveryFormat, RunsTheDefaultGuestTestsAndReboots) {
  auto run = boot(GetParam().image, "console=ttyS0");
  ASSERT_TRUE(run.process.exited_ok()) << run.process.describe() << "\n" << run.process.output;
  EXPECT_EQ(run.report.entry, GetParam().entry);
  EXPECT_TRUE(run.report.complete()) << run.report.summary();
  EXPECT_TRUE(run.report.fails.empty()) << run.report.summary();
  for (const char* test :
       {"boot", "cmdline", "e820", "acpi", "smp", "timer", "serial-irq", "kvmclock", "boottime"})
    EXPECT_TRUE(run.report.passed(test)) << test << "\n" << run.report.summary();
  EXPECT_NE(run.process.output.find("guest reboot"), std::string::npos) << run.process.output;
}

INSTANTIATE_TEST_SUITE_P(Formats, EveryFormat,
                         ::testing::Values(FormatCase{"ignition-test.elf", "elf64"},
                                           FormatCase{"ignition-test-pvh.elf", "pvh"},
                                           FormatCase{"ignition-test.bzImage", "bzimage64"}),
                         [](const auto& info) { return info.param.entry; });

TEST(IgnitionBoot, GuestSeesTheCommandLineVerbatim) {
  std::string cmdline = "console=ttyS0 ign.tests=cmdline quoted=\"a b\" last=x";
  auto run = boot("ignition-test.elf", cmdline);
  ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
  EXPECT_EQ(run.report.info("cmdline"), cmdline);
}

// e820 entries as (addr, size, type).
std::vector<std::tuple<uint64_t, uint64_t, int>> e820_of(const GuestReport& report) {
  std::vector<std::tuple<uint64_t, uint64_t, int>> out;
  for (const auto& entry : report.infos_for("e820")) {
    unsigned long long addr, size;
    int type;
    if (std::sscanf(entry.c_str(), "%llx:%llx:%d", &addr, &size, &type) == 3)
      out.emplace_back(addr, size, type);
  }
  return out;
}

TEST(IgnitionBoot, E820CoversRamAndLeavesTheMmioGapAlone) {
  for (int mem_mib : {128, 5120}) {
    auto run = boot("ignition-test.elf", "ign.tests=e820", 1, mem_mib);
    ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
    uint64_t usable = 0;
    for (auto [addr, size, type] : e820_of(run.report)) {
      if (type != 1) continue;
      usable += size;
      bool in_gap = addr < 0x100000000ULL && addr + size > 0xd0000000ULL;
      EXPECT_FALSE(in_gap) << std::hex << addr << "+" << size;
    }
    // All RAM but the reserved EBDA/BIOS area below 1 MiB is usable.
    uint64_t ram = uint64_t(mem_mib) << 20;
    EXPECT_LE(usable, ram);
    EXPECT_GE(usable, ram - (1 << 20)) << mem_mib << " MiB";
  }
}

TEST(IgnitionBoot, InitrdArrivesByteForByte) {
  std::string path = ::testing::TempDir() + "/ignition-initrd.bin";
  std::vector<uint8_t> data(300 * 1024 + 123);
  std::mt19937 rng(42);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<char*>(data.data()), data.size());
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (uint8_t b : data) hash = (hash ^ b) * 0x100000001b3ULL;

  auto run = run_ignition({"run", "--kernel", guest_image("ignition-test.elf"), "--initrd", path,
                           "--cmdline", "ign.tests=initrd"});
  ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
  auto detail = run.report.pass_detail("initrd");
  ASSERT_TRUE(detail) << run.report.summary();
  EXPECT_EQ(detail_field(*detail, "size"), std::to_string(data.size()));
  char expected[32];
  std::snprintf(expected, sizeof(expected), "0x%016llx", static_cast<unsigned long long>(hash));
  EXPECT_EQ(detail_field(*detail, "fnv1a64"), expected);
}

TEST(IgnitionBoot, EveryVcpuComesOnline) {
  for (int vcpus : {1, 2, 4}) {
    auto run = boot("ignition-test.elf", "ign.tests=acpi,smp", vcpus);
    ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
    EXPECT_EQ(run.report.info("acpi.cpus"), std::to_string(vcpus));
    EXPECT_EQ(run.report.info("cpus.online"), std::to_string(vcpus));
    EXPECT_TRUE(run.report.passed("smp")) << run.report.summary();
  }
}

TEST(IgnitionBoot, SerialInputReachesTheGuest) {
  bool sent = false;
  auto run = run_ignition(
      {"run", "--kernel", guest_image("ignition-test.elf"), "--cmdline", "ign.tests=echo"},
      [&](std::string_view line) {
        LineAction action;
        if (line.find("echo.ready") != std::string_view::npos && !sent) {
          action.write = "hello from the host\r";
          sent = true;
        }
        return action;
      });
  ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
  EXPECT_TRUE(sent);
  EXPECT_EQ(run.report.info("echo"), "hello from the host") << run.report.summary();
}

TEST(IgnitionBoot, BootTimerLogsGuestBootTime) {
  auto run = boot("ignition-test.elf", "ign.tests=boottime");
  ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
  EXPECT_NE(run.process.output.find("Guest-boot-time = "), std::string::npos) << run.process.output;
}

TEST(IgnitionBoot, ConsoleCanGoToAFile) {
  std::string dir = ::testing::TempDir();
  std::string console = dir + "/ignition-console.txt";
  std::string config = dir + "/ignition-console.json";
  std::remove(console.c_str());
  std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                        << guest_image("ignition-test.elf")
                        << R"(", "boot_args": "ign.tests=boot"}, "serial": {"serial_out_path": ")"
                        << console << R"("}})";
  auto run = run_ignition({"--config-file", config});
  ASSERT_TRUE(run.process.exited_ok()) << run.process.output;
  EXPECT_EQ(run.process.output.find("IGN-BEGIN"), std::string::npos) << "not on stdout";
  std::ifstream in(console);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto report = parse_guest_report(text);
  EXPECT_TRUE(report.ended) << text;
  EXPECT_TRUE(report.passed("boot")) << text;
}

TEST(IgnitionExit, AcpiPowerOffStopsTheVmCleanly) {
  auto run = boot("ignition-test.elf", "ign.tests=boot ign.exit=shutdown");
  EXPECT_TRUE(run.process.exited_ok()) << run.process.describe() << run.process.output;
  EXPECT_NE(run.process.output.find("guest power-off (ACPI S5)"), std::string::npos);
}

TEST(IgnitionExit, TripleFaultIsReportedWithRipAndInstructionBytes) {
  auto run = boot("ignition-test.elf", "ign.tests=boot ign.exit=triple-fault");
  ASSERT_TRUE(run.process.exited) << run.process.describe();
  EXPECT_EQ(run.process.exit_code, 2) << run.process.output;
  EXPECT_TRUE(run.report.ended);
  const auto& out = run.process.output;
  EXPECT_NE(out.find("triple fault"), std::string::npos) << out;
  EXPECT_NE(out.find("at RIP 0x"), std::string::npos) << out;
  EXPECT_NE(out.find("bytes:"), std::string::npos) << out;
}

TEST(IgnitionExit, GuestExceptionEndsTheRunWithAReport) {
  auto run = boot("ignition-test.elf", "ign.tests=fault");
  ASSERT_TRUE(run.process.exited) << run.process.describe();
  EXPECT_TRUE(run.report.ended) << run.process.output;
  EXPECT_TRUE(run.report.failed("exception")) << run.report.summary();
}

TEST(IgnitionExit, HangingGuestIsStoppedByTheHost) {
  ProcessOptions options;
  options.argv = {ignition_binary(), "run",
                  "--kernel",        guest_image("ignition-test.elf"),
                  "--cmdline",       "ign.tests=boot ign.exit=hang"};
  options.timeout = std::chrono::seconds(3);
  auto result = run_process(options);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->timed_out) << "a hanging guest keeps running until killed";
  EXPECT_TRUE(parse_guest_report(result->output).ended);
}

}  // namespace
}  // namespace ignition::test
