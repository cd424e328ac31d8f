// Clones and diff snapshots through the store: `clone -n N` starts N processes from one
// base, each continuing from the ready point with its own disk copy, VMGenID and vsock
// socket; a diff snapshot layers over its parent and flattens into a full one; `store gc`
// removes what has ended. The base is never written.
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

namespace fs = std::filesystem;

// vmgenid runs before the ready point (boottime), after it, and after a second ready point,
// so each restore reports its own generation ID and whether it changed.
constexpr const char* kTests = "ign.tests=vmgenid,boottime,vmgenid,timer,boottime,kvmclock,vmgenid";

class CloneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "ign-clone-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "-" +
           std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    {
      std::ofstream disk(dir_ + "/disk.img");
      disk << std::string(4096, 'B');
    }
    fs::resize_file(dir_ + "/disk.img", 1 << 20);
    std::ofstream(dir_ + "/vm.json")
        << R"({"boot-source": {"kernel_image_path": ")" << guest_image("ignition-test.elf")
        << R"(", "boot_args": ")" << kTests << R"("},
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        "drives": [{"drive_id": "data", "path_on_host": ")"
        << dir_ << R"(/disk.img", "is_root_device": false}],
        "vsock": {"guest_cid": 3, "uds_path": ")"
        << dir_ << R"(/v.sock"}})";
  }
  void TearDown() override { fs::remove_all(dir_); }

  ProcessResult ignition(std::vector<std::string> args) {
    ProcessOptions options;
    options.argv = {ignition_binary(), "--store", dir_ + "/store"};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.timeout = std::chrono::seconds(60);
    auto r = run_process(options);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : ProcessResult{};
  }
  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  std::string store(const std::string& rest) { return dir_ + "/store/" + rest; }

  std::string dir_;
};

TEST_F(CloneTest, ClonesContinueIndependentlyWithTheirOwnIdentity) {
  auto base = ignition({"snapshot", "base", "--config-file", dir_ + "/vm.json"});
  ASSERT_TRUE(base.exited_ok()) << base.output;
  auto base_id = parse_guest_report(base.output).info("vmgenid.id");
  ASSERT_TRUE(base_id.has_value()) << base.output;
  ASSERT_TRUE(fs::exists(store("snapshots/base/manifest.json")));
  ASSERT_TRUE(fs::exists(store("snapshots/base/disks/data"))) << "writable drives are copied";
  std::string memory_before = read(store("snapshots/base/memory"));

  auto clone = ignition({"clone", "base", "-n", "3"});
  ASSERT_TRUE(clone.exited_ok()) << clone.output;
  std::set<std::string> ids{*base_id};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    std::string dir = store("instances/base." + std::to_string(i));
    std::string console = read(dir + "/console.log");
    auto report = parse_guest_report(console);
    EXPECT_EQ(report.boots, 0) << "a clone must not boot again:\n" << console;
    EXPECT_TRUE(report.ended) << console;
    EXPECT_TRUE(report.fails.empty()) << console;
    for (const char* test : {"timer", "kvmclock", "vmgenid"}) EXPECT_TRUE(report.passed(test));
    auto id = report.info("vmgenid.id");
    ASSERT_TRUE(id.has_value()) << console;
    EXPECT_TRUE(ids.insert(*id).second) << "clone " << i << " reused generation ID " << *id;
    EXPECT_TRUE(fs::exists(dir + "/disks/data"));
    std::string manifest = read(dir + "/manifest.json");
    EXPECT_NE(manifest.find("\"base\": \"base\""), std::string::npos) << manifest;
    EXPECT_NE(manifest.find(dir + "/vsock.sock"), std::string::npos) << manifest;
  }
  EXPECT_EQ(read(store("snapshots/base/memory")), memory_before) << "the base must not change";

  auto list = ignition({"store", "list"});
  ASSERT_TRUE(list.exited_ok()) << list.output;
  EXPECT_NE(list.output.find("base.2"), std::string::npos) << list.output;
  auto gc = ignition({"store", "gc"});
  ASSERT_TRUE(gc.exited_ok()) << gc.output;
  EXPECT_NE(gc.output.find("3 instance(s)"), std::string::npos) << gc.output;
  EXPECT_FALSE(fs::exists(store("instances/base.0")));
  EXPECT_TRUE(fs::exists(store("snapshots/base/state"))) << "gc keeps complete snapshots";
}

TEST_F(CloneTest, DiffSnapshotLayersOnItsParentAndFlattens) {
  ASSERT_TRUE(ignition({"snapshot", "base", "--config-file", dir_ + "/vm.json"}).exited_ok());
  auto child = ignition({"restore", "base", "--snapshot", "child", "--diff"});
  ASSERT_TRUE(child.exited_ok()) << child.output;
  auto before = parse_guest_report(child.output);
  EXPECT_TRUE(before.passed("timer")) << child.output;
  EXPECT_FALSE(before.passed("kvmclock")) << "the diff is taken at the second ready point";

  // A diff holds only what changed since the base: far less on disk.
  auto allocated = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_blocks * 512 : -1;
  };
  EXPECT_LT(allocated(store("snapshots/child/memory")), allocated(store("snapshots/base/memory")));
  EXPECT_NE(read(store("snapshots/child/manifest.json")).find("\"kind\": \"diff\""),
            std::string::npos);

  for (bool flattened : {false, true}) {
    SCOPED_TRACE(flattened);
    if (flattened) {
      ASSERT_TRUE(ignition({"store", "flatten", "child"}).exited_ok());
    }
    auto run = ignition({"restore", "child"});
    ASSERT_TRUE(run.exited_ok()) << run.output;
    auto report = parse_guest_report(run.output);
    EXPECT_EQ(report.boots, 0) << run.output;
    EXPECT_TRUE(report.ended) << run.output;
    EXPECT_TRUE(report.fails.empty()) << run.output;
    EXPECT_TRUE(report.passed("kvmclock")) << run.output;
    EXPECT_FALSE(report.passed("timer")) << "continues after the second ready point";
  }
  EXPECT_NE(read(store("snapshots/child/manifest.json")).find("\"kind\": \"full\""),
            std::string::npos);
}

TEST_F(CloneTest, BadRequestsAreRefused) {
  auto missing = ignition({"clone", "nothing", "-n", "2"});
  EXPECT_EQ(missing.exit_code, 1) << missing.output;
  EXPECT_NE(missing.output.find("no snapshot 'nothing'"), std::string::npos) << missing.output;
  auto diff_alone = ignition({"snapshot", "base", "--config-file", dir_ + "/vm.json"});
  ASSERT_TRUE(diff_alone.exited_ok());
  auto no_name = ignition({"restore", "base", "--diff"});
  EXPECT_EQ(no_name.exit_code, 1) << no_name.output;
}

}  // namespace
}  // namespace ignition::test
