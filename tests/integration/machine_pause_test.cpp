// Pause and resume a running machine from another thread: while paused the guest makes
// no progress (its console stays silent), after resume it finishes normally.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "vmm/machine.hpp"

namespace ignition::vmm {
namespace {

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

TEST(MachinePause, PausedGuestMakesNoProgressAndResumes) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
  ::fcntl(pipe_fds[1], F_SETPIPE_SZ, 1 << 20);
  config::VmConfig config;
  config.machine_config.vcpu_count = 2;
  config.machine_config.mem_size_mib = 64;
  config.boot_source.kernel_image_path = test::guest_image("ignition-test.elf");
  MachineIo io;
  io.console_out = pipe_fds[1];
  auto machine = Machine::create(config, io);
  ASSERT_TRUE(machine.ok()) << machine.error().message;

  std::promise<void> paused;
  (*machine)->post([&] {
    (*machine)->pause();
    paused.set_value();
  });
  auto outcome = std::async(std::launch::async, [&] { return (*machine)->run(); });
  paused.get_future().wait();

  std::string before = drain(pipe_fds[0]);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string during = drain(pipe_fds[0]);
  EXPECT_EQ(during, "") << "a paused guest printed";
  EXPECT_EQ(test::parse_guest_report(before).ended, false);

  std::promise<bool> was_paused;
  (*machine)->post([&] {
    was_paused.set_value((*machine)->paused());
    (*machine)->resume();
  });
  EXPECT_TRUE(was_paused.get_future().get());

  auto result = outcome.get();
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->kind, RunOutcome::Kind::Reset);
  auto report = test::parse_guest_report(before + drain(pipe_fds[0]));
  EXPECT_TRUE(report.ended) << report.summary();
  EXPECT_TRUE(report.fails.empty()) << report.summary();
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(MachinePause, StopEndsARunningGuest) {
  config::VmConfig config;
  config.machine_config.mem_size_mib = 64;
  config.boot_source.kernel_image_path = test::guest_image("ignition-test.elf");
  config.boot_source.boot_args = "ign.tests=boot ign.exit=hang";
  MachineIo io;
  io.console_out = -1;
  auto machine = Machine::create(config, io);
  ASSERT_TRUE(machine.ok()) << machine.error().message;
  auto outcome = std::async(std::launch::async, [&] { return (*machine)->run(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  (*machine)->stop();
  auto result = outcome.get();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->kind, RunOutcome::Kind::Shutdown);
}

}  // namespace
}  // namespace ignition::vmm
