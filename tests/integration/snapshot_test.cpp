// Snapshot at the guest's ready point, then restore: the guest continues from there
// (no second boot), every restore is independent, the base never changes, and a bad
// snapshot file is refused with a clear error before any VM runs.
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

namespace fs = std::filesystem;

// Tests after `boottime` run only after the snapshot: SMP bring-up, timer and serial
// interrupts and kvmclock are exercised on the restored machine.
constexpr const char* kTests =
    "ign.tests=boot,cmdline,boottime,e820,acpi,smp,timer,serial-irq,kvmclock";

class SnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = ::testing::TempDir() + "ign-store-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
             std::to_string(::getpid());
    fs::remove_all(store_);
  }
  void TearDown() override { fs::remove_all(store_); }

  ProcessResult ignition(std::vector<std::string> args) {
    ProcessOptions options;
    options.argv = {ignition_binary(), "--store", store_};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.timeout = std::chrono::seconds(60);
    auto r = run_process(options);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : ProcessResult{};
  }
  ProcessResult snapshot(const std::string& name) {
    return ignition({"snapshot", name, "--kernel", guest_image("ignition-test.elf"), "--vcpus", "2",
                     "--mem-mib", "128", "--cmdline", kTests});
  }
  std::string file(const std::string& name, const std::string& which) {
    return store_ + "/snapshots/" + name + "/" + which;
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  std::string store_;
};

TEST_F(SnapshotTest, RestoredGuestContinuesFromTheReadyPoint) {
  auto base = snapshot("base");
  ASSERT_TRUE(base.exited_ok()) << base.output;
  auto before = parse_guest_report(base.output);
  EXPECT_TRUE(before.passed("cmdline"));
  EXPECT_FALSE(before.ended) << "the snapshot stops the guest at its ready point";
  EXPECT_FALSE(before.passed("smp"));
  ASSERT_TRUE(fs::exists(file("base", "state")));
  std::string memory_before = read(file("base", "memory"));

  for (int clone = 0; clone < 3; ++clone) {
    SCOPED_TRACE(clone);
    auto run = ignition({"restore", "base"});
    ASSERT_TRUE(run.exited_ok()) << run.describe() << "\n" << run.output;
    auto report = parse_guest_report(run.output);
    EXPECT_EQ(report.boots, 0) << "a restore must not boot again:\n" << run.output;
    EXPECT_TRUE(report.ended) << run.output;
    EXPECT_TRUE(report.fails.empty()) << run.output;
    for (const char* test : {"boottime", "e820", "acpi", "smp", "timer", "serial-irq", "kvmclock"})
      EXPECT_TRUE(report.passed(test)) << test << "\n" << run.output;
    EXPECT_EQ(report.info("cpus.online"), "2");
  }
  EXPECT_EQ(read(file("base", "memory")), memory_before) << "clones never write the base";
}

TEST_F(SnapshotTest, ActiveVirtioDeviceWorksAfterRestore) {
  std::string config = store_ + "-vm.json";
  std::ofstream(config) << R"({"boot-source": {"kernel_image_path": ")"
                        << guest_image("ignition-test.elf")
                        << R"(", "boot_args": "ign.tests=virtio-rng,boottime,virtio-rng"},
      "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}, "entropy": {}})";
  auto base = ignition({"snapshot", "rng", "--config-file", config});
  ASSERT_TRUE(base.exited_ok()) << base.output;
  EXPECT_TRUE(parse_guest_report(base.output).passed("virtio-rng")) << base.output;
  auto run = ignition({"restore", "rng"});
  ASSERT_TRUE(run.exited_ok()) << run.output;
  auto report = parse_guest_report(run.output);
  EXPECT_TRUE(report.ended) << run.output;
  EXPECT_TRUE(report.fails.empty()) << run.output;
  EXPECT_TRUE(report.passed("virtio-rng")) << "the restored device serves requests\n" << run.output;
  std::filesystem::remove(config);
}

TEST_F(SnapshotTest, StoreRefusesDuplicatesAndMissingNames) {
  ASSERT_TRUE(snapshot("dup").exited_ok());
  auto again = snapshot("dup");
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  auto missing = ignition({"restore", "nothing-here"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("no snapshot 'nothing-here'"), std::string::npos) << missing.output;
  auto bad_name = ignition({"restore", "../etc"});
  EXPECT_EQ(bad_name.exit_code, 1);
}

TEST_F(SnapshotTest, DamagedSnapshotsAreRefusedBeforeAnythingRuns) {
  ASSERT_TRUE(snapshot("good").exited_ok());
  std::string state = read(file("good", "state"));
  struct Damage {
    const char* name;
    std::string bytes;
    const char* expect;
  };
  std::string flipped = state;
  flipped[flipped.size() / 2] ^= 0x40;
  std::vector<Damage> cases = {
      {"truncated", state.substr(0, state.size() / 3), "snapshot"},
      {"flipped", flipped, "checksum"},
      {"foreign", std::string(4096, 'x'), "not an ignition snapshot"},
      {"empty", "", "empty"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    std::string dir = store_ + "/snapshots/" + c.name;
    fs::create_directories(dir);
    std::ofstream(dir + "/state", std::ios::binary) << c.bytes;
    fs::copy_file(file("good", "memory"), dir + "/memory");
    auto run = ignition({"restore", c.name});
    EXPECT_EQ(run.exit_code, 1) << run.output;
    EXPECT_NE(run.output.find(c.expect), std::string::npos) << run.output;
    EXPECT_EQ(run.output.find("IGN-"), std::string::npos) << "no guest may run";
  }
  // A memory file of the wrong size.
  fs::resize_file(file("good", "memory"), 4096);
  auto run = ignition({"restore", "good"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.output.find("memory file"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace ignition::test
