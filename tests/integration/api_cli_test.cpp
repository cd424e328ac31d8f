// The ignition binary in its Firecracker-style mode (--api-sock, --config-file, --no-api,
// --id): served over a real socket with curl, exiting with the guest, and ending cleanly on
// SIGTERM. Skipped until the binary has --api-sock, and when curl is missing.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/paths.hpp"
#include "support/process.hpp"
#include "support/unix_socket.hpp"

namespace ignition::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

bool binary_has_api_mode() {
  ProcessOptions p;
  p.argv = {ignition_binary(), "--help"};
  p.timeout = 10s;
  auto r = run_process(p);
  return r.ok() && r->output.find("--api-sock") != std::string::npos;
}

std::string unique_path(const std::string& stem) {
  static int counter = 0;
  return ::testing::TempDir() + "/ign-cli-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

class ApiCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!binary_has_api_mode()) GTEST_SKIP() << "ignition has no --api-sock yet";
    curl_ = find_program("curl");
  }

  // Returns the HTTP status; the body goes to `body`.
  int curl(const std::string& sock, const std::string& method, const std::string& path,
           const std::string& data = "", std::string* body = nullptr) {
    ProcessOptions p;
    p.argv = {
        *curl_,          "-s", "--unix-socket", sock, "-X", method, "http://localhost" + path, "-w",
        "\n%{http_code}"};
    if (!data.empty()) p.argv.insert(p.argv.end(), {"-d", data});
    p.timeout = 20s;
    auto r = run_process(p);
    if (!r.ok()) return -1;
    auto nl = r->output.rfind('\n');
    if (nl == std::string::npos) return -1;
    if (body) *body = r->output.substr(0, nl);
    return std::atoi(r->output.c_str() + nl + 1);
  }

  std::optional<std::string> curl_;
};

std::string write_config(const std::string& boot_args) {
  std::string path = unique_path("config") + ".json";
  std::ofstream(path) << json{{"boot-source",
                               {{"kernel_image_path", guest_image("ignition-test.elf")},
                                {"boot_args", boot_args}}},
                              {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}}}
                             .dump();
  return path;
}

TEST_F(ApiCliTest, ApiSocketConfiguresBootsAndExitsWithTheGuest) {
  if (!curl_) GTEST_SKIP() << "curl is not installed";
  std::string sock = unique_path("api") + ".sock";
  auto run = std::async(std::launch::async, [&] {
    ProcessOptions p;
    p.argv = {ignition_binary(), "--api-sock", sock, "--id", "cli-vm"};
    p.timeout = 60s;
    return run_process(p);
  });
  ASSERT_TRUE(wait_for_socket(sock));
  std::string body;
  EXPECT_EQ(curl(sock, "GET", "/", "", &body), 200);
  auto info = json::parse(body, nullptr, false);
  EXPECT_EQ(info["id"], "cli-vm");
  EXPECT_EQ(info["state"], "Not started");
  json boot = {{"kernel_image_path", guest_image("ignition-test.elf")},
               {"boot_args", "ign.tests=boot ign.exit=reboot"}};
  EXPECT_EQ(curl(sock, "PUT", "/boot-source", boot.dump()), 204);
  EXPECT_EQ(curl(sock, "PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})"), 204);
  EXPECT_EQ(curl(sock, "PUT", "/actions", R"({"action_type": "InstanceStart"})"), 204);
  auto result = run.get();
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->exited_ok()) << result->describe() << "\n" << result->output;
  EXPECT_NE(result->output.find("IGN-PASS boot"), std::string::npos) << result->output;
  EXPECT_FALSE(exists(sock)) << "socket file left behind";
}

TEST_F(ApiCliTest, ConfigFileWithAndWithoutTheApi) {
  std::string config = write_config("ign.tests=boot ign.exit=shutdown");
  std::string sock = unique_path("cfg") + ".sock";
  for (std::vector<std::string> args :
       {std::vector<std::string>{"--api-sock", sock, "--config-file", config},
        std::vector<std::string>{"--no-api", "--config-file", config}}) {
    ProcessOptions p;
    p.argv = {ignition_binary()};
    p.argv.insert(p.argv.end(), args.begin(), args.end());
    p.timeout = 60s;
    auto r = run_process(p);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->exited_ok()) << r->describe() << "\n" << r->output;
    EXPECT_NE(r->output.find("IGN-END pass=1 fail=0"), std::string::npos) << r->output;
  }
  EXPECT_FALSE(exists(sock));
}

TEST_F(ApiCliTest, BadArgumentsExitOne) {
  std::string regular = unique_path("regular");
  std::ofstream(regular) << "x";
  for (std::vector<std::string> args : {std::vector<std::string>{"--no-api"},
                                        {"--api-sock", regular},
                                        {"--api-sock", unique_path("id"), "--id", "bad id"}}) {
    ProcessOptions p;
    p.argv = {ignition_binary()};
    p.argv.insert(p.argv.end(), args.begin(), args.end());
    p.timeout = 20s;
    auto r = run_process(p);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->exited && r->exit_code == 1) << r->describe() << "\n" << r->output;
    EXPECT_NE(r->output.find("ignition: "), std::string::npos) << r->output;
  }
}

// Spawned directly (not through run_process) to know its pid for the signal.
TEST_F(ApiCliTest, SigtermStopsTheGuestAndRemovesTheSocket) {
  std::string sock = unique_path("term") + ".sock";
  std::string config = write_config("ign.tests=boot ign.exit=hang");
  std::string bin = ignition_binary();
  std::vector<std::string> args = {bin, "--api-sock", sock, "--config-file", config};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  ASSERT_EQ(::posix_spawn(&pid, bin.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  bool up = wait_for_socket(sock);
  std::this_thread::sleep_for(200ms);  // let the guest boot
  ASSERT_EQ(::kill(pid, SIGTERM), 0);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
  }
  if (done == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "ignition did not end on SIGTERM";
  }
  EXPECT_TRUE(up);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(exists(sock)) << "socket file left behind";
}

}  // namespace
}  // namespace ignition::test
