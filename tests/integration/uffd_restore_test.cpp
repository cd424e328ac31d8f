// Restore through the userfaultfd memory backend, end to end: the test guest is snapshotted at
// its ready point into a store, `ignition uffd-handler` serves that snapshot's memory file on
// a socket, and a second ignition loads the snapshot through its API with
// mem_backend {"backend_type": "Uffd"}. The guest carries on from the ready point (no second
// boot) and finishes its tests, with every page it touched served by the handler; with a
// balloon, the pages the guest gives back reach the handler as remove events. Skipped until
// the binary has the uffd-handler command.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"
#include "support/unix_socket.hpp"

namespace ignition::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// The snapshot is taken after `boottime`; the rest runs on the restored machine.
constexpr const char* kBootArgs =
    "ign.tests=boot,cmdline,boottime,e820,acpi,smp,timer,serial-irq,kvmclock";
const char* const kAfterSnapshot[] = {"e820", "acpi", "smp", "timer", "serial-irq", "kvmclock"};

bool binary_has_uffd_handler() {
  ProcessOptions p;
  p.argv = {ignition_binary(), "--help"};
  p.timeout = 10s;
  auto r = run_process(p);
  return r.ok() && r->output.find("uffd-handler") != std::string::npos;
}

// Runs `argv` in the background; the result once it ends (or is killed after two minutes).
std::future<ProcessResult> start(std::vector<std::string> argv, LineHandler on_line = {}) {
  return start_process({.argv = std::move(argv), .on_line = std::move(on_line), .timeout = 120s});
}

struct HandlerCounts {
  uint64_t faults = 0, copied = 0, removes = 0;
};

// The counts `ignition uffd-handler` prints when it ends.
std::optional<HandlerCounts> handler_counts(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m,
                         std::regex(R"(served (\d+) page faults: (\d+) pages copied.*; (\d+) )"
                                    R"(remove events)")))
    return std::nullopt;
  return HandlerCounts{std::stoull(m[1].str()), std::stoull(m[2].str()), std::stoull(m[3].str())};
}

class UffdRestoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!binary_has_uffd_handler()) GTEST_SKIP() << "ignition has no uffd-handler command yet";
    dir_ = ::testing::TempDir() + "ign-uffd-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Snapshots the guest `config` describes at its ready point into the store as "base".
  void snapshot_base(const json& config) {
    std::string path = dir_ + "/vm.json";
    std::ofstream(path) << config.dump();
    ProcessOptions snap;
    snap.argv = {ignition_binary(), "--store", store(), "snapshot", "base", "--config-file", path};
    snap.timeout = 60s;
    auto base = run_process(snap);
    ASSERT_TRUE(base.ok() && base->exited_ok()) << (base.ok() ? base->output : "");
    ASSERT_TRUE(fs::exists(state()) && fs::exists(memory()));
  }
  std::string store() const { return dir_ + "/store"; }
  std::string state() const { return store() + "/snapshots/base/state"; }
  std::string memory() const { return store() + "/snapshots/base/memory"; }
  std::string handler_sock() const { return dir_ + "/uffd.sock"; }
  std::string api_sock() const { return dir_ + "/api.sock"; }

  std::future<ProcessResult> start_handler() {
    return start(
        {ignition_binary(), "uffd-handler", "--socket", handler_sock(), "--memory", memory()});
  }
  std::future<ProcessResult> start_vmm(LineHandler on_line = {}) {
    return start({ignition_binary(), "--api-sock", api_sock()}, std::move(on_line));
  }
  Result<HttpResponse> load_through_handler() {
    return http_request(
        api_sock(), "PUT", "/snapshot/load",
        json{{"snapshot_path", state()},
             {"mem_backend", {{"backend_type", "Uffd"}, {"backend_path", handler_sock()}}},
             {"resume_vm", true}}
            .dump());
  }

  std::string dir_;
};

TEST_F(UffdRestoreTest, ApiLoadWithUffdBackendContinuesFromTheReadyPoint) {
  ASSERT_NO_FATAL_FAILURE(snapshot_base(
      {{"boot-source",
        {{"kernel_image_path", guest_image("ignition-test.elf")}, {"boot_args", kBootArgs}}},
       {"machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 128}}}}));
  auto handler = start_handler();
  ASSERT_TRUE(wait_for_socket(handler_sock())) << "the handler did not listen";
  auto vmm = start_vmm();
  ASSERT_TRUE(wait_for_socket(api_sock())) << "the VMM did not listen";

  // Nobody at the backend path: a clear 400, and the VMM may still load.
  auto refused = http_request(
      api_sock(), "PUT", "/snapshot/load",
      json{{"snapshot_path", state()},
           {"mem_backend", {{"backend_type", "Uffd"}, {"backend_path", dir_ + "/none"}}}}
          .dump());
  ASSERT_TRUE(refused.ok()) << refused.error().message;
  EXPECT_EQ(refused->status, 400) << refused->body;
  EXPECT_NE(refused->body.find("uffd handler"), std::string::npos) << refused->body;

  auto loaded = load_through_handler();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->status, 204) << loaded->body;

  auto run = vmm.get();
  ASSERT_TRUE(run.exited_ok()) << run.describe() << "\n" << run.output;
  auto report = parse_guest_report(run.output);
  EXPECT_EQ(report.boots, 0) << "a restore must not boot again:\n" << run.output;
  EXPECT_TRUE(report.ended) << run.output;
  EXPECT_TRUE(report.fails.empty()) << run.output;
  for (const char* test : kAfterSnapshot) EXPECT_TRUE(report.passed(test)) << test << run.output;
  EXPECT_EQ(report.info("cpus.online"), "2");

  // The VMM is gone, so the handler ends too, saying what it served.
  auto served = handler.get();
  ASSERT_TRUE(served.exited_ok()) << served.describe() << "\n" << served.output;
  auto counts = handler_counts(served.output);
  ASSERT_TRUE(counts.has_value()) << served.output;
  EXPECT_GT(counts->copied, 0u) << "the guest's pages came from the handler";
  EXPECT_GE(counts->faults, counts->copied);
}

// The guest inflates its balloon after the restore: the VMM drops those pages and the handler
// gets remove events; deflated, they read back as zeros.
TEST_F(UffdRestoreTest, BalloonPagesGivenBackReachTheHandlerAsRemoveEvents) {
  ASSERT_NO_FATAL_FAILURE(snapshot_base(
      {{"boot-source",
        {{"kernel_image_path", guest_image("ignition-test.elf")},
         {"boot_args", "ign.tests=boot,cmdline,boottime,virtio-balloon"}}},
       {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}},
       {"balloon",
        {{"amount_mib", 32}, {"deflate_on_oom", false}, {"stats_polling_interval_s", 0}}}}));
  auto handler = start_handler();
  ASSERT_TRUE(wait_for_socket(handler_sock())) << "the handler did not listen";
  std::string patch_error;
  auto vmm = start_vmm([&](std::string_view line) {
    // Inflated to the configured 32 MiB: lower the target, and the guest deflates.
    if (line.rfind(IGN_LINE_INFO " " IGN_INFO_BALLOON_INFLATED "=", 0) == 0) {
      auto patch = http_request(api_sock(), "PATCH", "/balloon", R"({"amount_mib": 16})");
      if (!patch.ok() || patch->status != 204)
        patch_error = patch.ok() ? patch->body : patch.error().message;
    }
    return LineAction{};
  });
  ASSERT_TRUE(wait_for_socket(api_sock())) << "the VMM did not listen";
  auto loaded = load_through_handler();
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->status, 204) << loaded->body;

  auto run = vmm.get();
  ASSERT_TRUE(run.exited_ok()) << run.describe() << "\n" << run.output;
  EXPECT_EQ(patch_error, "");
  auto report = parse_guest_report(run.output);
  EXPECT_EQ(report.boots, 0) << run.output;
  EXPECT_TRUE(report.passed(IGN_TEST_VIRTIO_BALLOON)) << run.output;
  EXPECT_EQ(report.info(IGN_INFO_BALLOON_INFLATED), "8192") << run.output;
  EXPECT_EQ(report.info("balloon.reclaimed").value_or("").rfind("zeroed", 0), 0u)
      << "the VMM gave the pages back:\n"
      << run.output;

  auto served = handler.get();
  ASSERT_TRUE(served.exited_ok()) << served.describe() << "\n" << served.output;
  auto counts = handler_counts(served.output);
  ASSERT_TRUE(counts.has_value()) << served.output;
  EXPECT_GT(counts->removes, 0u) << served.output;
}

}  // namespace
}  // namespace ignition::test
