// The ignition binary driven through its API socket end to end: configure, boot, pause,
// snapshot and resume one process, then load that snapshot in a second process where the
// guest carries on from the snapshot point (no second boot) and finishes its tests. Also
// post-boot PATCH requests and SendCtrlAltDel on a running guest, and the metrics file.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/fd.hpp"
#include "ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/net_peer.hpp"
#include "support/paths.hpp"
#include "support/unix_socket.hpp"

namespace ignition::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string temp_path(const std::string& stem) {
  static int counter = 0;
  return ::testing::TempDir() + "ign-apisnap-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++);
}

// A running ignition process: its console (stdin, and stdout + stderr merged) is ours.
class Ignition {
 public:
  // `prefix` runs before the binary (e.g. "ip netns exec <ns>").
  explicit Ignition(const std::string& sock, std::vector<std::string> prefix = {}) {
    std::vector<std::string> args = std::move(prefix);
    for (const auto& a : {ignition_binary(), std::string("--api-sock"), sock}) args.push_back(a);
    int in[2], out[2];
    // Stdin is a socket so that typing to a process that is gone fails instead of SIGPIPE.
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) return;
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    stdin_.reset(in[0]);
    UniqueFd child_in(in[1]), child_out(out[1]);
    UniqueFd our_out(out[0]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, child_in.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, child_out.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, child_out.get(), 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      return;
    }
    reader_ = std::thread([this, fd = std::move(our_out)] {
      char buf[4096];
      while (true) {
        ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        std::lock_guard lock(mu_);
        if (n <= 0) {
          eof_ = true;
          cv_.notify_all();
          return;
        }
        output_.append(buf, static_cast<size_t>(n));
        cv_.notify_all();
      }
    });
  }

  ~Ignition() {
    if (pid_ > 0 && !status_) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    stdin_.reset();
    if (reader_.joinable()) reader_.join();
  }

  bool started() const { return pid_ > 0; }
  std::string output() {
    std::lock_guard lock(mu_);
    return output_;
  }
  // Waits until the output holds `needle` (found after `from`); false on timeout or EOF.
  bool wait_for(std::string_view needle, std::chrono::milliseconds timeout = 60s, size_t from = 0) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return output_.find(needle, from) != std::string::npos || eof_;
    }) && output_.find(needle, from) != std::string::npos;
  }
  // Writes to the guest's serial console.
  bool type(std::string_view text) {
    return ::send(stdin_.get(), text.data(), text.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(text.size());
  }
  // The exit status, or nullopt if it still runs after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 60s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!status_) {
      int status = 0;
      pid_t done = ::waitpid(pid_, &status, WNOHANG);
      if (done == pid_) {
        status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(20ms);
    }
    return status_;
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  UniqueFd stdin_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
};

struct Reply {
  int status = 0;
  std::string body;
  json json_body() const { return json::parse(body, nullptr, false); }
};

// One request on a fresh connection; status 0 when the server could not be reached.
Reply api(const std::string& sock, const std::string& method, const std::string& target,
          const std::string& body = "") {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  sock.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n";
  if (!body.empty()) {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "\r\n" + body;
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size()))
    return {};
  std::string in;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    size_t head_end = in.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::string head = in.substr(0, head_end);
      size_t length = 0;
      if (auto at = head.find("Content-Length: "); at != std::string::npos)
        length = std::stoul(head.substr(at + 16));
      if (in.size() >= head_end + 4 + length) {
        Reply r;
        r.status = std::atoi(head.c_str() + head.find(' ') + 1);
        r.body = in.substr(head_end + 4, length);
        return r;
      }
    }
    pollfd pfd{fd.get(), POLLIN, 0};
    if (::poll(&pfd, 1, 1000) <= 0) continue;
    char buf[4096];
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
  }
  return {};
}

Reply api(const std::string& sock, const std::string& method, const std::string& target,
          const json& body) {
  return api(sock, method, target, body.dump());
}

std::vector<json> metrics_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(json::parse(line, nullptr, false));
  return lines;
}

// The guest prints echo.ready and waits for a line on its console; that wait is the
// snapshot point. The tests after echo run on whichever machine gets the line.
constexpr const char* kBootArgs =
    "ign.tests=boot,cmdline,boottime,echo,smp,timer,serial-irq,kvmclock ign.exit=reboot";
const char* const kAfterSnapshot[] = {"echo", "smp", "timer", "serial-irq", "kvmclock"};

class ApiSnapshotTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& p : cleanup_) fs::remove(p);
  }
  std::string path(const std::string& stem) {
    cleanup_.push_back(temp_path(stem));
    return cleanup_.back();
  }
  std::vector<std::string> cleanup_;
};

TEST_F(ApiSnapshotTest, SnapshotInOneProcessContinuesInAnother) {
  std::string sock_a = path("a.sock"), sock_b = path("b.sock"), sock_c = path("c.sock");
  std::string state = path("state"), memory = path("memory"), metrics = path("metrics");
  std::ofstream(metrics).flush();

  Ignition a(sock_a);
  ASSERT_TRUE(a.started());
  ASSERT_TRUE(wait_for_socket(sock_a)) << a.output();
  ASSERT_EQ(api(sock_a, "PUT", "/metrics", json{{"metrics_path", metrics}}).status, 204);
  ASSERT_EQ(
      api(sock_a, "PUT", "/boot-source",
          json{{"kernel_image_path", guest_image("ignition-test.elf")}, {"boot_args", kBootArgs}})
          .status,
      204);
  ASSERT_EQ(
      api(sock_a, "PUT", "/machine-config", json{{"vcpu_count", 2}, {"mem_size_mib", 128}}).status,
      204);
  ASSERT_EQ(api(sock_a, "PUT", "/actions", json{{"action_type", "InstanceStart"}}).status, 204);
  ASSERT_TRUE(a.wait_for(IGN_LINE_INFO " " IGN_INFO_ECHO_READY)) << a.output();
  EXPECT_TRUE(parse_guest_report(a.output()).passed(IGN_TEST_BOOTTIME)) << a.output();

  ASSERT_EQ(api(sock_a, "PATCH", "/vm", json{{"state", "Paused"}}).status, 204);
  EXPECT_EQ(api(sock_a, "GET", "/").json_body()["state"], "Paused");
  auto created =
      api(sock_a, "PUT", "/snapshot/create",
          json{{"snapshot_type", "Full"}, {"snapshot_path", state}, {"mem_file_path", memory}});
  ASSERT_EQ(created.status, 204) << created.body;
  ASSERT_TRUE(fs::exists(state));
  EXPECT_EQ(fs::file_size(memory), 128u << 20);
  // Not configured for dirty page tracking: Diff is refused, as by Firecracker.
  auto diff = api(sock_a, "PUT", "/snapshot/create",
                  json{{"snapshot_type", "Diff"},
                       {"snapshot_path", state + ".d"},
                       {"mem_file_path", memory + ".d"}});
  EXPECT_EQ(diff.status, 400);
  EXPECT_NE(diff.body.find("Diff snapshots are not allowed"), std::string::npos) << diff.body;
  ASSERT_EQ(api(sock_a, "PUT", "/actions", json{{"action_type", "FlushMetrics"}}).status, 204);
  ASSERT_EQ(api(sock_a, "PATCH", "/vm", json{{"state", "Resumed"}}).status, 204);

  // The metrics: a line at InstanceStart and one for FlushMetrics, Firecracker's keys.
  auto lines = metrics_lines(metrics);
  ASSERT_GE(lines.size(), 2u);
  const json& last = lines.back();
  ASSERT_TRUE(last.is_object());
  EXPECT_GT(last["latencies_us"]["full_create_snapshot"].get<uint64_t>(), 0u) << last.dump();
  EXPECT_GT(last["latencies_us"]["vmm_full_create_snapshot"].get<uint64_t>(), 0u);
  EXPECT_GT(last["latencies_us"]["pause_vm"].get<uint64_t>(), 0u);
  EXPECT_GT(last["vcpu"]["exit_count"].get<uint64_t>(), 0u) << "the guest printed since start";
  EXPECT_GT(last["api_server"]["process_startup_time_us"].get<uint64_t>(), 0u);
  EXPECT_EQ(lines.front()["put_api_requests"]["boot_source_count"], 1);
  EXPECT_EQ(last["put_api_requests"]["actions_count"], 1) << "InstanceStart, since the first line";
  for (const char* key : {"block", "net", "balloon", "i8042", "get_api_requests",
                          "patch_api_requests", "deprecated_api", "utc_timestamp_ms"})
    EXPECT_TRUE(last.contains(key)) << key;

  // The first VM carries on after the snapshot and finishes.
  ASSERT_TRUE(a.type("from-a\n"));
  auto a_status = a.wait_exit();
  ASSERT_TRUE(a_status.has_value()) << "the first VM did not finish:\n" << a.output();
  EXPECT_EQ(*a_status, 0) << a.output();
  auto a_report = parse_guest_report(a.output());
  EXPECT_TRUE(a_report.complete() && a_report.fails.empty()) << a.output();
  EXPECT_EQ(a_report.info("echo"), "from-a");

  // A second process loads the snapshot and resumes at once: the guest is still waiting for
  // its line, gets one, and runs the rest of its tests there, without booting again.
  Ignition b(sock_b);
  ASSERT_TRUE(b.started());
  ASSERT_TRUE(wait_for_socket(sock_b)) << b.output();
  EXPECT_EQ(api(sock_b, "GET", "/").json_body()["state"], "Not started");
  auto loaded = api(sock_b, "PUT", "/snapshot/load",
                    json{{"snapshot_path", state},
                         {"mem_backend", {{"backend_type", "File"}, {"backend_path", memory}}},
                         {"resume_vm", true}});
  ASSERT_EQ(loaded.status, 204) << loaded.body << "\n" << b.output();
  EXPECT_EQ(api(sock_b, "GET", "/").json_body()["state"], "Running");
  auto config = api(sock_b, "GET", "/vm/config").json_body();
  EXPECT_EQ(config["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(config["boot-source"]["boot_args"], kBootArgs);
  EXPECT_TRUE(!config.contains("metrics") || config["metrics"].is_null())
      << "the first process's metrics file is not this one's: " << config.dump();
  auto started_again = api(sock_b, "PUT", "/actions", json{{"action_type", "InstanceStart"}});
  EXPECT_EQ(started_again.status, 400) << "a loaded VM counts as started";
  ASSERT_TRUE(b.type("from-b\n"));
  auto b_status = b.wait_exit();
  ASSERT_TRUE(b_status.has_value()) << "the restored VM did not finish:\n" << b.output();
  EXPECT_EQ(*b_status, 0) << b.output();
  auto b_report = parse_guest_report(b.output());
  EXPECT_EQ(b_report.boots, 0) << "a restore must not boot again:\n" << b.output();
  EXPECT_TRUE(b_report.ended) << b.output();
  EXPECT_TRUE(b_report.fails.empty()) << b.output();
  EXPECT_EQ(b_report.info("echo"), "from-b");
  for (const char* test : kAfterSnapshot) EXPECT_TRUE(b_report.passed(test)) << test;
  EXPECT_EQ(b_report.info("cpus.online"), "2");

  // Loaded paused (the default): nothing runs until PATCH /vm Resumed.
  Ignition c(sock_c);
  ASSERT_TRUE(wait_for_socket(sock_c)) << c.output();
  auto loaded_paused = api(sock_c, "PUT", "/snapshot/load",
                           json{{"snapshot_path", state}, {"mem_file_path", memory}});
  ASSERT_EQ(loaded_paused.status, 204) << loaded_paused.body << "\n" << c.output();
  EXPECT_EQ(api(sock_c, "GET", "/").json_body()["state"], "Paused");
  ASSERT_TRUE(c.type("from-c\n"));
  EXPECT_FALSE(c.wait_for("echo=from-c", 500ms)) << "a paused guest read its console";
  ASSERT_EQ(api(sock_c, "PATCH", "/vm", json{{"state", "Resumed"}}).status, 204);
  auto c_status = c.wait_exit();
  ASSERT_TRUE(c_status.has_value()) << c.output();
  auto c_report = parse_guest_report(c.output());
  EXPECT_EQ(c_report.boots, 0) << c.output();
  EXPECT_TRUE(c_report.ended && c_report.fails.empty()) << c.output();
  EXPECT_EQ(c_report.info("echo"), "from-c");
}

// snapshot/load's vsock_override puts the restored vsock device's socket at another path, and
// clock_realtime moves the guest's kvmclock on by the time since the snapshot (without it,
// guest time resumes where it was saved). The guest reports the kvmclock it reads.
TEST_F(ApiSnapshotTest, LoadOverridesTheVsockSocketAndCanAdvanceTheClock) {
  std::string sock_a = path("a.sock"), sock_b = path("b.sock"), sock_c = path("c.sock");
  std::string vsock_a = path("vsock-a"), vsock_c = path("vsock-c");
  std::string state = path("state"), memory = path("memory");
  {
    Ignition a(sock_a);
    ASSERT_TRUE(wait_for_socket(sock_a)) << a.output();
    ASSERT_EQ(
        api(sock_a, "PUT", "/boot-source",
            json{{"kernel_image_path", guest_image("ignition-test.elf")}, {"boot_args", kBootArgs}})
            .status,
        204);
    ASSERT_EQ(api(sock_a, "PUT", "/vsock", json{{"guest_cid", 3}, {"uds_path", vsock_a}}).status,
              204);
    ASSERT_EQ(api(sock_a, "PUT", "/actions", json{{"action_type", "InstanceStart"}}).status, 204);
    ASSERT_TRUE(a.wait_for(IGN_LINE_INFO " " IGN_INFO_ECHO_READY)) << a.output();
    ASSERT_EQ(api(sock_a, "PATCH", "/vm", json{{"state", "Paused"}}).status, 204);
    auto created =
        api(sock_a, "PUT", "/snapshot/create",
            json{{"snapshot_type", "Full"}, {"snapshot_path", state}, {"mem_file_path", memory}});
    ASSERT_EQ(created.status, 204) << created.body;
  }  // killed: its vsock socket is left behind, stale
  auto snapshot_taken = std::chrono::steady_clock::now();

  auto run_restored = [&](Ignition& vm, const std::string& sock, const json& load) {
    auto loaded = api(sock, "PUT", "/snapshot/load", load);
    EXPECT_EQ(loaded.status, 204) << loaded.body << "\n" << vm.output();
    EXPECT_TRUE(vm.type("go\n"));
    auto status = vm.wait_exit();
    EXPECT_TRUE(status.has_value() && *status == 0) << vm.output();
    auto report = parse_guest_report(vm.output());
    EXPECT_EQ(report.boots, 0) << vm.output();
    EXPECT_TRUE(report.ended && report.fails.empty()) << vm.output();
    EXPECT_TRUE(report.passed(IGN_TEST_KVMCLOCK)) << vm.output();
    return std::stoull(report.info("kvmclock.ns").value_or("0"));
  };
  json load{{"snapshot_path", state},
            {"mem_backend", {{"backend_type", "File"}, {"backend_path", memory}}},
            {"resume_vm", true}};

  // b: the snapshot's own socket path (the stale file is replaced), guest time continued.
  Ignition b(sock_b);
  ASSERT_TRUE(wait_for_socket(sock_b)) << b.output();
  uint64_t continued_ns = run_restored(b, sock_b, load);

  // c, at least 5 s after the snapshot: another socket path, and the clock moved on (by 5 s
  // less whatever b spent running, which the 2 s threshold below leaves room for).
  std::this_thread::sleep_until(snapshot_taken + 5s);
  Ignition c(sock_c);
  ASSERT_TRUE(wait_for_socket(sock_c)) << c.output();
  json load_c = load;
  load_c["vsock_override"] = {{"uds_path", vsock_c}};
  load_c["clock_realtime"] = true;
  load_c["resume_vm"] = false;
  auto loaded = api(sock_c, "PUT", "/snapshot/load", load_c);
  ASSERT_EQ(loaded.status, 204) << loaded.body << "\n" << c.output();
  EXPECT_EQ(api(sock_c, "GET", "/vm/config").json_body()["vsock"]["uds_path"], vsock_c);
  struct stat st {};
  EXPECT_TRUE(::lstat(vsock_c.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
      << "the restored device listens at the override path";
  ASSERT_EQ(api(sock_c, "PATCH", "/vm", json{{"state", "Resumed"}}).status, 204);
  ASSERT_TRUE(c.type("go\n"));
  auto c_status = c.wait_exit();
  ASSERT_TRUE(c_status.has_value() && *c_status == 0) << c.output();
  auto c_report = parse_guest_report(c.output());
  EXPECT_TRUE(c_report.ended && c_report.fails.empty()) << c.output();
  uint64_t advanced_ns = std::stoull(c_report.info("kvmclock.ns").value_or("0"));
  EXPECT_GT(continued_ns, 0u);
  EXPECT_GE(advanced_ns, continued_ns + 2'000'000'000ull)
      << "clock_realtime counts the seconds between snapshot and load";
  EXPECT_FALSE(fs::exists(vsock_c)) << "removed when the device went";
}

TEST_F(ApiSnapshotTest, BadLoadsAreFaultsAndLeaveTheProcessUsable) {
  std::string sock = path("bad.sock"), junk = path("junk");
  std::ofstream(junk) << "not a snapshot";
  Ignition p(sock);
  ASSERT_TRUE(wait_for_socket(sock)) << p.output();
  auto missing = api(sock, "PUT", "/snapshot/load",
                     json{{"snapshot_path", "/nonexistent/state"},
                          {"mem_backend", {{"backend_type", "File"}, {"backend_path", junk}}}});
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("Load snapshot error"), std::string::npos) << missing.body;
  auto damaged = api(sock, "PUT", "/snapshot/load",
                     json{{"snapshot_path", junk},
                          {"mem_backend", {{"backend_type", "File"}, {"backend_path", junk}}}});
  EXPECT_EQ(damaged.status, 400);
  EXPECT_NE(damaged.body.find("Load snapshot error"), std::string::npos) << damaged.body;
  EXPECT_EQ(api(sock, "GET", "/").json_body()["state"], "Not started");
  // Still fresh: the VM can be configured and booted normally.
  ASSERT_EQ(api(sock, "PUT", "/boot-source",
                json{{"kernel_image_path", guest_image("ignition-test.elf")},
                     {"boot_args", "ign.tests=boot ign.exit=reboot"}})
                .status,
            204);
  ASSERT_EQ(api(sock, "PUT", "/actions", json{{"action_type", "InstanceStart"}}).status, 204);
  auto status = p.wait_exit();
  ASSERT_TRUE(status.has_value()) << p.output();
  EXPECT_EQ(*status, 0) << p.output();
}

// PATCH requests on a running guest reach its devices, and GET /vm/config shows the result.
TEST_F(ApiSnapshotTest, PostBootPatchesAndCtrlAltDel) {
  std::string sock = path("patch.sock"), disk = path("disk"), disk2 = path("disk2");
  for (auto [file, size] : {std::pair{disk, 1 << 20}, std::pair{disk2, 2 << 20}}) {
    std::ofstream(file).flush();
    fs::resize_file(file, size);
  }
  // With a network namespace (root) the VM gets a NIC whose rate limiters are patched too.
  std::optional<NetNamespace> ns;
  if (::geteuid() == 0) ns.emplace();
  bool with_net = ns && ns->ok();
  std::vector<std::string> prefix;
  if (with_net) prefix = ns->exec({});
  Ignition p(sock, prefix);
  ASSERT_TRUE(wait_for_socket(sock)) << p.output();
  ASSERT_EQ(api(sock, "PUT", "/boot-source",
                json{{"kernel_image_path", guest_image("ignition-test.elf")},
                     {"boot_args", "ign.tests=boot,echo ign.exit=reboot"}})
                .status,
            204);
  ASSERT_EQ(api(sock, "PUT", "/drives/rootfs",
                json{{"drive_id", "rootfs"},
                     {"path_on_host", disk},
                     {"is_root_device", true},
                     {"is_read_only", false}})
                .status,
            204);
  ASSERT_EQ(api(sock, "PUT", "/balloon",
                json{{"amount_mib", 0}, {"deflate_on_oom", false}, {"stats_polling_interval_s", 1}})
                .status,
            204);
  if (with_net) {
    ASSERT_EQ(api(sock, "PUT", "/network-interfaces/eth0",
                  json{{"iface_id", "eth0"}, {"host_dev_name", NetNamespace::kTap}})
                  .status,
              204);
  }
  ASSERT_EQ(api(sock, "PUT", "/actions", json{{"action_type", "InstanceStart"}}).status, 204);
  ASSERT_TRUE(p.wait_for(IGN_LINE_INFO " " IGN_INFO_ECHO_READY)) << p.output();

  // Drive: a new backing file, then a rate limiter.
  auto patched =
      api(sock, "PATCH", "/drives/rootfs", json{{"drive_id", "rootfs"}, {"path_on_host", disk2}});
  EXPECT_EQ(patched.status, 204) << patched.body;
  json limiter = {{"bandwidth", {{"size", 1048576}, {"refill_time", 100}}}};
  patched =
      api(sock, "PATCH", "/drives/rootfs", json{{"drive_id", "rootfs"}, {"rate_limiter", limiter}});
  EXPECT_EQ(patched.status, 204) << patched.body;
  auto config = api(sock, "GET", "/vm/config").json_body();
  EXPECT_EQ(config["drives"][0]["path_on_host"], disk2);
  EXPECT_EQ(config["drives"][0]["rate_limiter"]["bandwidth"]["size"], 1048576) << config.dump();
  auto bad = api(sock, "PATCH", "/drives/rootfs",
                 json{{"drive_id", "rootfs"}, {"path_on_host", "/nonexistent/disk"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(api(sock, "GET", "/vm/config").json_body()["drives"][0]["path_on_host"], disk2);

  // Network interface: both rate limiters.
  if (with_net) {
    json ops = {{"ops", {{"size", 100}, {"refill_time", 1000}}}};
    auto net =
        api(sock, "PATCH", "/network-interfaces/eth0",
            json{{"iface_id", "eth0"}, {"rx_rate_limiter", limiter}, {"tx_rate_limiter", ops}});
    EXPECT_EQ(net.status, 204) << net.body;
    auto iface = api(sock, "GET", "/vm/config").json_body()["network-interfaces"][0];
    EXPECT_EQ(iface["rx_rate_limiter"]["bandwidth"]["refill_time"], 100) << iface.dump();
    EXPECT_EQ(iface["tx_rate_limiter"]["ops"]["size"], 100) << iface.dump();
  }

  // Balloon: statistics readable and their interval patched; the target reaches the device,
  // which refuses it until a guest driver has started it (this guest has none running).
  auto stats = api(sock, "GET", "/balloon/statistics");
  EXPECT_EQ(stats.status, 200) << stats.body;
  EXPECT_EQ(stats.json_body()["target_mib"], 0) << stats.body;
  EXPECT_EQ(api(sock, "PATCH", "/balloon/statistics", json{{"stats_polling_interval_s", 3}}).status,
            204);
  EXPECT_EQ(api(sock, "GET", "/balloon").json_body()["stats_polling_interval_s"], 3);
  auto target = api(sock, "PATCH", "/balloon", json{{"amount_mib", 16}});
  EXPECT_EQ(target.status, 400);
  EXPECT_NE(target.body.find("Balloon update error"), std::string::npos) << target.body;
  EXPECT_NE(target.body.find("not started the device"), std::string::npos) << target.body;

  // Ctrl+Alt+Del reaches the i8042 (this guest has no keyboard driver: it carries on).
  auto cad = api(sock, "PUT", "/actions", json{{"action_type", "SendCtrlAltDel"}});
  EXPECT_EQ(cad.status, 204) << cad.body;

  ASSERT_TRUE(p.type("done\n"));
  auto status = p.wait_exit();
  ASSERT_TRUE(status.has_value()) << p.output();
  EXPECT_EQ(*status, 0) << p.output();
  auto report = parse_guest_report(p.output());
  EXPECT_TRUE(report.complete() && report.fails.empty()) << p.output();
}

}  // namespace
}  // namespace ignition::test
