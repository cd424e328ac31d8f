// Free page reporting end to end: the test guest, booted by the ignition binary with a balloon
// that offers reporting, reports a 2 MiB chunk of its memory it had filled as free and checks
// that it reads back as zeros once the device returns it (the host discarded it).
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

struct BalloonRun {
  ProcessResult process;
  GuestReport report;
};

BalloonRun run_balloon_guest(const std::string& boot_args, bool free_page_reporting) {
  std::string config = ::testing::TempDir() + "ign-balloon-report-" + std::to_string(::getpid()) +
                       "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                       ".json";
  std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                        << guest_image("ignition-test.elf") << R"(", "boot_args": ")" << boot_args
                        << R"("},
      "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
      "balloon": {"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 0,
                  "free_page_reporting": )"
                        << (free_page_reporting ? "true" : "false") << "}}";
  ProcessOptions p;
  p.argv = {ignition_binary(), "--config-file", config};
  p.timeout = std::chrono::seconds(60);
  auto r = run_process(p);
  EXPECT_TRUE(r.ok());
  std::remove(config.c_str());
  if (!r.ok()) return {};
  return {*r, parse_guest_report(r->output)};
}

TEST(BalloonReportingTest, ReportedGuestMemoryComesBackZeroed) {
  auto run =
      run_balloon_guest("ign.tests=boot,virtio-balloon ign.balloon.report=1", /*reporting=*/true);
  ASSERT_TRUE(run.process.exited_ok()) << run.process.describe() << "\n" << run.process.output;
  EXPECT_TRUE(run.report.passed("boot")) << run.process.output;
  EXPECT_TRUE(run.report.passed("virtio-balloon")) << run.process.output;
  EXPECT_TRUE(run.report.fails.empty()) << run.process.output;
  auto reported = run.report.info("balloon.reported");
  ASSERT_TRUE(reported) << run.process.output;
  EXPECT_EQ(reported->rfind("2097152 zeroed=yes", 0), 0u) << *reported;
}

TEST(BalloonReportingTest, GuestSaysSoWhenTheDeviceDoesNotOfferIt) {
  auto run =
      run_balloon_guest("ign.tests=virtio-balloon ign.balloon.report=1", /*reporting=*/false);
  EXPECT_FALSE(run.report.passed("virtio-balloon")) << run.process.output;
  EXPECT_NE(run.process.output.find("reporting-not-offered"), std::string::npos)
      << run.process.output;
  EXPECT_FALSE(run.report.has_info("balloon.reported")) << run.process.output;
}

}  // namespace
}  // namespace ignition::test
