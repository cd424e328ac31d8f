// In-process checkpoint and reset, checked by the guest itself: it takes a checkpoint
// through the reset port, dirties pages (and has virtio-rng write into its memory), asks
// for a reset, and checks after every reset that all of it is back as at the checkpoint.
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

struct ResetRun {
  ProcessResult process;
  GuestReport report;
};

ResetRun run_reset_guest(const std::string& options, bool reset_port, int vcpus = 1) {
  std::string config = ::testing::TempDir() + "ign-reset-" + std::to_string(::getpid()) + "-" +
                       ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json";
  std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                        << guest_image("ignition-test.elf")
                        << R"(", "boot_args": "ign.tests=reset )" << options << R"("},
      "machine-config": {"vcpu_count": )"
                        << vcpus << R"(, "mem_size_mib": 128}, "entropy": {}})";
  ProcessOptions p;
  p.argv = {ignition_binary(), "--config-file", config};
  if (reset_port) p.argv.push_back("--reset-port");
  p.timeout = std::chrono::seconds(60);
  auto r = run_process(p);
  EXPECT_TRUE(r.ok());
  std::remove(config.c_str());
  if (!r.ok()) return {};
  return {*r, parse_guest_report(r->output)};
}

TEST(ResetTest, EveryResetRestoresPagesDeviceWritesAndState) {
  auto run = run_reset_guest("ign.reset.count=200 ign.reset.pages=64", true);
  ASSERT_TRUE(run.process.exited_ok()) << run.process.describe() << "\n" << run.process.output;
  EXPECT_TRUE(run.report.passed("reset")) << run.process.output;
  EXPECT_TRUE(run.report.fails.empty()) << run.process.output;
  // The guest used virtio-rng in every pass: device writes were rolled back too.
  EXPECT_EQ(run.report.info("reset.pages"), "64 count=200 rng=1") << run.process.output;
  // The VMM's own account: 200 resets, each copying back at least the 64 pages dirtied.
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(run.process.output, m, std::regex(R"(Resets = (\d+) median: pages (\d+))")))
      << run.process.output;
  EXPECT_EQ(m[1], "200");
  EXPECT_GE(std::stoi(m[2]), 64);
  EXPECT_LT(std::stoi(m[2]), 64 + 32) << "a reset should copy back only what was dirtied";
}

TEST(ResetTest, SmpGuestResets) {
  auto run = run_reset_guest("ign.reset.count=20 ign.reset.pages=8", true, 2);
  ASSERT_TRUE(run.process.exited_ok()) << run.process.describe() << "\n" << run.process.output;
  EXPECT_TRUE(run.report.passed("reset")) << run.process.output;
}

TEST(ResetTest, WithoutTheResetPortTheGuestIsTold) {
  auto run = run_reset_guest("ign.reset.count=5", false);
  EXPECT_FALSE(run.report.passed("reset")) << run.process.output;
  EXPECT_NE(run.process.output.find("no-reset-port"), std::string::npos) << run.process.output;
}

}  // namespace
}  // namespace ignition::test
