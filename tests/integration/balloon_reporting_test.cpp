// Free page reporting end to end: the test guest, booted by the ignition binary with a balloon
// that offers reporting, reports a 2 MiB chunk of its memory it had filled as free and checks
// that it reads back as zeros once the device returns it (the host discarded it).
#include <gtest/gtest.h>

#include "support/ignition_vm.hpp"

namespace ignition::test {
namespace {

VmRun run_balloon_guest(const std::string& tests, bool free_page_reporting) {
  GuestVm vm;
  vm.tests = tests;
  vm.cmdline_extra = "ign.balloon.report=1";
  vm.devices = std::string(R"("balloon": {"amount_mib": 0, "deflate_on_oom": false, )") +
               R"("stats_polling_interval_s": 0, "free_page_reporting": )" +
               (free_page_reporting ? "true" : "false") + "}";
  auto run = boot_guest_vm(vm, test_temp_path("vm.json"));
  EXPECT_TRUE(run.ok()) << (run.ok() ? "" : run.error().message);
  return run.ok() ? *run : VmRun{};
}

TEST(BalloonReportingTest, ReportedGuestMemoryComesBackZeroed) {
  auto run = run_balloon_guest("boot,virtio-balloon", /*free_page_reporting=*/true);
  ASSERT_TRUE(run.process.exited_ok()) << run.explain();
  EXPECT_TRUE(run.report.passed("boot")) << run.explain();
  EXPECT_TRUE(run.report.passed("virtio-balloon")) << run.explain();
  EXPECT_TRUE(run.report.fails.empty()) << run.explain();
  auto reported = run.report.info("balloon.reported");
  ASSERT_TRUE(reported) << run.explain();
  EXPECT_EQ(reported->rfind("2097152 zeroed=yes", 0), 0u) << *reported;
}

TEST(BalloonReportingTest, GuestSaysSoWhenTheDeviceDoesNotOfferIt) {
  auto run = run_balloon_guest("virtio-balloon", /*free_page_reporting=*/false);
  EXPECT_FALSE(run.report.passed("virtio-balloon")) << run.explain();
  EXPECT_NE(run.process.output.find("reporting-not-offered"), std::string::npos) << run.explain();
  EXPECT_FALSE(run.report.has_info("balloon.reported")) << run.explain();
}

}  // namespace
}  // namespace ignition::test
