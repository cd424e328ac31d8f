// The API driven by curl over the Unix socket, as in Firecracker's getting-started guide:
// configure, boot, pause, resume, read back. Skipped when curl is not installed.
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "api/http_server.hpp"
#include "api/machine_runner.hpp"
#include "api/router.hpp"
#include "api/vmm_controller.hpp"
#include "base/fd.hpp"
#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"

namespace ignition::api {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct CurlReply {
  int status = 0;
  std::string body;
};

class ApiCurlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    curl_ = test::find_program("curl");
    if (!curl_) GTEST_SKIP() << "curl is not installed";
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    console_read_.reset(fds[0]);
    console_write_.reset(fds[1]);
    vmm::MachineIo io;
    io.console_out = console_write_.get();
    ControllerOptions options;
    options.launcher = machine_launcher(io);
    auto controller = VmmController::create(std::move(options));
    ASSERT_TRUE(controller.ok()) << controller.error().message;
    controller_ = std::move(controller).value();
    router_ = std::make_unique<Router>(*controller_);
    socket_ = ::testing::TempDir() + "/ign-curl-" + std::to_string(::getpid()) + ".sock";
    auto server =
        HttpServer::start(socket_, [this](const ApiRequest& r) { return router_->handle(r); });
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }

  void TearDown() override {
    if (server_) server_->stop();
    controller_.reset();
  }

  // curl --unix-socket S -X METHOD http://localhost/PATH [-d BODY]; the status code comes
  // last on its own line (-w).
  CurlReply curl(const std::string& method, const std::string& path,
                 const std::optional<std::string>& body = std::nullopt) {
    test::ProcessOptions p;
    p.argv = {*curl_,         "--silent",
              "--show-error", "--unix-socket",
              socket_,        "-X",
              method,         "http://localhost" + path,
              "-H",           "Accept: application/json",
              "-w",           "\n%{http_code}"};
    if (body) {
      p.argv.insert(p.argv.end(), {"-H", "Content-Type: application/json", "-d", *body});
    }
    p.timeout = 30s;
    auto r = test::run_process(p);
    EXPECT_TRUE(r.ok());
    if (!r.ok()) return {};
    EXPECT_TRUE(r->exited_ok()) << r->describe() << "\n" << r->output;
    CurlReply reply;
    auto nl = r->output.rfind('\n');
    if (nl == std::string::npos) return reply;
    reply.status = std::atoi(r->output.c_str() + nl + 1);
    reply.body = r->output.substr(0, nl);
    return reply;
  }

  std::string state() {
    return json::parse(curl("GET", "/").body, nullptr, false).value("state", "<none>");
  }

  std::optional<std::string> curl_;
  UniqueFd console_read_, console_write_;
  std::unique_ptr<VmmController> controller_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<HttpServer> server_;
  std::string socket_;
};

TEST_F(ApiCurlTest, GettingStartedFlow) {
  std::string disk = ::testing::TempDir() + "/ign-curl-rootfs-" + std::to_string(::getpid());
  std::ofstream(disk) << std::string(1 << 20, '\0');

  EXPECT_EQ(curl("PUT", "/boot-source",
                 json{{"kernel_image_path", test::guest_image("ignition-test.elf")},
                      {"boot_args", "ign.tests=boot ign.exit=hang"}}
                     .dump())
                .status,
            204);
  EXPECT_EQ(curl("PUT", "/drives/rootfs",
                 json{{"drive_id", "rootfs"},
                      {"path_on_host", disk},
                      {"is_root_device", true},
                      {"is_read_only", false}}
                     .dump())
                .status,
            204);
  EXPECT_EQ(curl("PUT", "/machine-config", R"({"vcpu_count": 2, "mem_size_mib": 64})").status, 204);
  // A body over 1 KiB: curl asks with "Expect: 100-continue" first.
  std::string doc = json{{"latest", {{"blob", std::string(3000, 'm')}}}}.dump();
  EXPECT_EQ(curl("PUT", "/mmds", doc).status, 204);
  EXPECT_EQ(json::parse(curl("GET", "/mmds").body, nullptr, false), json::parse(doc));

  auto bad = curl("PUT", "/machine-config", R"({"vcpu_count": 0, "mem_size_mib": 64})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_TRUE(json::parse(bad.body, nullptr, false).contains("fault_message")) << bad.body;

  EXPECT_EQ(state(), "Not started");
  EXPECT_EQ(curl("PUT", "/actions", R"({"action_type": "InstanceStart"})").status, 204);
  std::string console;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  test::GuestReport report;
  while (!report.ended && std::chrono::steady_clock::now() < deadline) {
    char buf[4096];
    ssize_t n;
    while ((n = ::read(console_read_.get(), buf, sizeof(buf))) > 0) console.append(buf, n);
    report = test::parse_guest_report(console);
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(report.passed("boot")) << report.summary();
  EXPECT_EQ(state(), "Running");

  EXPECT_EQ(curl("PATCH", "/vm", R"({"state": "Paused"})").status, 204);
  EXPECT_EQ(state(), "Paused");
  EXPECT_EQ(curl("PATCH", "/vm", R"({"state": "Resumed"})").status, 204);
  EXPECT_EQ(state(), "Running");

  auto config = json::parse(curl("GET", "/vm/config").body, nullptr, false);
  EXPECT_EQ(config["machine-config"]["vcpu_count"], 2);
  EXPECT_EQ(config["drives"][0]["path_on_host"], disk);
  auto late = curl("PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})");
  EXPECT_EQ(late.status, 400);
  EXPECT_NE(late.body.find("not supported after starting the microVM"), std::string::npos);
  EXPECT_EQ(curl("POST", "/actions", R"({"action_type": "InstanceStart"})").status, 400);
  ::unlink(disk.c_str());
}

}  // namespace
}  // namespace ignition::api
