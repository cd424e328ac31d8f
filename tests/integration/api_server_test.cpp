// The API server on a real Unix socket with real machines: every route with a valid and an
// invalid request, an end-to-end boot with pause/resume, HTTP edge cases (keep-alive,
// malformed requests, oversized bodies, Expect: 100-continue), socket-file handling, and
// run_api_server with a config file.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <thread>

#include "api/api_main.hpp"
#include "api/http_server.hpp"
#include "api/machine_runner.hpp"
#include "api/router.hpp"
#include "api/vmm_controller.hpp"
#include "base/fd.hpp"
#include "support/guest_report.hpp"
#include "support/paths.hpp"

namespace ignition::api {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;
using namespace std::chrono_literals;

std::string unique_path(const std::string& stem) {
  static int counter = 0;
  return ::testing::TempDir() + "/ign-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter++);
}

UniqueFd connect_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return {};
  return fd;
}

struct Reply {
  int status = 0;
  std::string body;
  bool deprecation = false;
  std::string content_type;
  json json_body() const { return json::parse(body, nullptr, false); }
  std::string fault() const {
    auto j = json_body();
    return j.is_object() && j.contains("fault_message") ? j["fault_message"].get<std::string>()
                                                        : "<no fault in '" + body + "'>";
  }
};

// A raw HTTP/1.1 client: writes bytes as given, parses responses with Beast, never blocks
// longer than its deadline.
class Client {
 public:
  explicit Client(const std::string& path) : fd_(connect_unix(path)) {}
  bool connected() const { return fd_.valid(); }

  bool send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
      ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

  std::optional<Reply> request(std::string_view method, std::string_view target,
                               std::optional<std::string> body = std::nullopt,
                               std::string extra_headers = "") {
    std::string req =
        fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\n{}", method, target, extra_headers);
    if (body) {
      req += fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
                         body->size(), *body);
    } else {
      req += "\r\n";
    }
    if (!send_raw(req)) return std::nullopt;
    return read_reply();
  }
  std::optional<Reply> request_json(std::string_view method, std::string_view target,
                                    const json& body) {
    return request(method, target, std::optional<std::string>(body.dump()));
  }

  std::optional<Reply> read_reply(std::chrono::milliseconds timeout = 20s) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (!pending_.empty()) {
        boost::system::error_code ec;
        size_t used = parser.put(boost::asio::buffer(pending_), ec);
        pending_.erase(0, used);
        if (ec && ec != http::error::need_more) return std::nullopt;
        if (parser.is_done()) break;
        if (used > 0 && !pending_.empty()) continue;
      }
      if (!read_more(deadline)) return std::nullopt;
    }
    auto res = parser.release();
    Reply r;
    r.status = static_cast<int>(res.result_int());
    r.body = res.body();
    r.deprecation = res["Deprecation"] == "true";
    r.content_type = std::string(res[http::field::content_type]);
    return r;
  }

  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_server(std::chrono::milliseconds timeout = 5s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_more(deadline)) pending_.clear();
    return eof_;
  }

 private:
  bool read_more(std::chrono::steady_clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{fd_.get(), POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[65536];
    ssize_t n = ::read(fd_.get(), buf, sizeof(buf));
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    return true;
  }

  UniqueFd fd_;
  std::string pending_;
  bool eof_ = false;
};

std::string drain(int fd) {
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

std::string temp_file(const std::string& stem, const std::string& content) {
  std::string path = unique_path(stem);
  std::ofstream(path) << content;
  return path;
}

// One API server in this process with real machines behind it; the guest console goes to
// a pipe the test reads.
class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    console_read_.reset(fds[0]);
    console_write_.reset(fds[1]);
    vmm::MachineIo io;
    io.console_out = console_write_.get();
    ControllerOptions options;
    options.instance_id = "api-test";
    options.launcher = machine_launcher(io);
    auto controller = VmmController::create(std::move(options));
    ASSERT_TRUE(controller.ok()) << controller.error().message;
    controller_ = std::move(controller).value();
    router_ = std::make_unique<Router>(*controller_);
    socket_ = unique_path("api") + ".sock";
    HttpServerOptions server_options;
    server_options.max_body_bytes = 64 << 10;
    auto server = HttpServer::start(
        socket_, [this](const ApiRequest& r) { return router_->handle(r); }, server_options);
    ASSERT_TRUE(server.ok()) << server.error().message;
    server_ = std::move(server).value();
  }

  void TearDown() override {
    if (server_) server_->stop();
    controller_.reset();
  }

  // Reads the console until `done` holds for the report, or the deadline.
  test::GuestReport wait_for_console(std::function<bool(const test::GuestReport&)> done,
                                     std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      console_ += drain(console_read_.get());
      auto report = test::parse_guest_report(console_);
      if (done(report) || std::chrono::steady_clock::now() > deadline) return report;
      std::this_thread::sleep_for(20ms);
    }
  }

  UniqueFd console_read_, console_write_;
  std::string console_;
  std::unique_ptr<VmmController> controller_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<HttpServer> server_;
  std::string socket_;
};

struct Case {
  std::string method;
  std::string target;
  std::optional<std::string> body;
  int status;
  std::string needle;  // in the fault message (errors) or the body (200)
};

void run_cases(Client& client, const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    SCOPED_TRACE(c.method + " " + c.target + " " + c.body.value_or("<no body>"));
    auto reply = client.request(c.method, c.target, c.body);
    ASSERT_TRUE(reply.has_value()) << "no response";
    EXPECT_EQ(reply->status, c.status) << reply->body;
    if (c.status >= 400) {
      EXPECT_NE(reply->fault().find(c.needle), std::string::npos)
          << "expected '" << c.needle << "' in fault: " << reply->fault();
      EXPECT_EQ(reply->content_type, "application/json");
    } else if (c.status == 200) {
      EXPECT_TRUE(reply->json_body().is_object()) << reply->body;
      EXPECT_NE(reply->body.find(c.needle), std::string::npos) << reply->body;
    } else {
      EXPECT_EQ(reply->body, "");
    }
  }
}

TEST_F(ApiServerTest, EveryRouteBeforeBootWithAValidAndAnInvalidRequest) {
  std::string kernel = test::guest_image("ignition-test.elf");
  std::string disk = temp_file("disk", std::string(1 << 16, '\0'));
  std::string metrics = temp_file("metrics", "");
  std::string pre(kNotSupportedPreBoot);
  std::string deser = "An error occurred when deserializing the json body of a request";
  std::vector<Case> cases = {
      {"GET", "/", std::nullopt, 200, "\"state\":\"Not started\""},
      {"GET", "/", "{}", 400, "GET request cannot have a body."},
      {"GET", "/version", std::nullopt, 200, "firecracker_version"},
      {"PUT", "/version", "{}", 400, "Invalid request method and/or path: PUT /version."},
      {"PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 64})", 204, ""},
      {"PUT", "/machine-config", R"({"vcpu_count": 99, "mem_size_mib": 64})", 400, "vcpu_count"},
      {"GET", "/machine-config", std::nullopt, 200, "\"mem_size_mib\":64"},
      {"GET", "/machine-config/x", std::nullopt, 400, "Invalid request method and/or path"},
      {"PATCH", "/machine-config", R"({"mem_size_mib": 96})", 204, ""},
      {"PATCH", "/machine-config", "{}", 400, "Empty PATCH request."},
      {"PUT", "/boot-source", json{{"kernel_image_path", kernel}}.dump(), 204, ""},
      {"PUT", "/boot-source", "{}", 400, "kernel_image_path"},
      {"PUT", "/drives/rootfs",
       json{{"drive_id", "rootfs"}, {"path_on_host", disk}, {"is_root_device", true}}.dump(), 204,
       ""},
      {"PUT", "/drives/rootfs",
       json{{"drive_id", "other"}, {"path_on_host", disk}, {"is_root_device", true}}.dump(), 400,
       "The id from the path does not match the id from the body!"},
      {"PATCH", "/drives/rootfs", R"({"drive_id": "rootfs"})", 400, pre},
      {"PATCH", "/drives/rootfs", R"({"drive_id": "rootfs", "bogus": 1})", 400, deser},
      {"PUT", "/network-interfaces/eth0", R"({"iface_id": "eth0", "host_dev_name": "ign-tap-t0"})",
       204, ""},
      {"PUT", "/network-interfaces/eth0",
       R"({"iface_id": "eth0", "host_dev_name": "t", "guest_mac": "zz:00:00:00:00:00"})", 400,
       "guest_mac"},
      {"PATCH", "/network-interfaces/eth0", R"({"iface_id": "eth0"})", 400, pre},
      {"PATCH", "/network-interfaces/eth-0", R"({"iface_id": "eth-0"})", 400,
       "API Resource IDs can only contain alphanumeric characters and underscores."},
      {"PUT", "/pmem/pm0", json{{"id", "pm0"}, {"path_on_host", disk}}.dump(), 204, ""},
      {"PUT", "/pmem/pm0", R"({"id": "pm0"})", 400, "path_on_host"},
      {"PATCH", "/pmem/pm0", R"({"id": "pm0"})", 400, pre},
      {"PATCH", "/pmem", R"({"id": "pm0"})", 400, "The ID cannot be empty."},
      {"PUT", "/vsock", R"({"guest_cid": 3, "uds_path": "/tmp/ign-api-test-v.sock"})", 204, ""},
      {"PUT", "/vsock", R"({"guest_cid": 2, "uds_path": "/tmp/v.sock"})", 400, "guest_cid"},
      {"PUT", "/entropy", "{}", 204, ""},
      {"PUT", "/entropy", R"({"rate_limiter": 5})", 400, "rate_limiter"},
      {"PUT", "/serial", "{}", 204, ""},
      {"PUT", "/serial", R"({"serial_out_path": 7})", 400, "serial_out_path"},
      {"PUT", "/balloon", R"({"amount_mib": 8, "deflate_on_oom": true})", 204, ""},
      {"PUT", "/balloon", R"({"amount_mib": 8})", 400, "deflate_on_oom"},
      {"GET", "/balloon", std::nullopt, 200, "\"amount_mib\":8"},
      {"GET", "/balloon/nothing", std::nullopt, 400, "Invalid request method and/or path"},
      {"PATCH", "/balloon", R"({"amount_mib": 4})", 400, pre},
      {"PATCH", "/balloon", R"({"amount": 4})", 400, deser},
      {"GET", "/balloon/statistics", std::nullopt, 400, pre},
      {"PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": 1})", 400, pre},
      {"PATCH", "/balloon/statistics", R"({"stats_polling_interval_s": -1})", 400, deser},
      {"PATCH", "/balloon/hinting/start", std::nullopt, 400, pre},
      {"PATCH", "/balloon/hinting/start", R"({"acknowledge_on_stop": "yes"})", 400, deser},
      {"GET", "/balloon/hinting/status", std::nullopt, 400, pre},
      {"PATCH", "/balloon/hinting/stop", std::nullopt, 400, pre},
      {"PUT", "/logger", R"({"level": "Info"})", 204, ""},
      {"PUT", "/logger", R"({"level": "Loud"})", 400, "level"},
      {"PUT", "/metrics", json{{"metrics_path", metrics}}.dump(), 204, ""},
      {"PUT", "/metrics", json{{"metrics_path", metrics}}.dump(), 400,
       "Reinitialization of metrics not allowed"},
      {"PUT", "/mmds", R"({"latest": {"meta-data": {"id": "i-1"}}})", 204, ""},
      {"PUT", "/mmds", "{\"a\":", 400, deser},
      {"PATCH", "/mmds", R"({"latest": {"meta-data": {"zone": "z"}}})", 204, ""},
      {"PATCH", "/mmds", "[1,", 400, deser},
      {"GET", "/mmds", std::nullopt, 200, R"({"latest":{"meta-data":{"id":"i-1","zone":"z"}}})"},
      {"GET", "/mmds", "{}", 400, "GET request cannot have a body."},
      {"PUT", "/mmds/config", R"({"network_interfaces": ["eth0"], "version": "V2"})", 204, ""},
      {"PUT", "/mmds/config", R"({"network_interfaces": ["eth9"]})", 400, "MMDS config error"},
      {"PUT", "/cpu-config", R"({"kvm_capabilities": ["!121"]})", 204, ""},
      {"PUT", "/cpu-config", R"({"reg_modifiers": []})", 400, "reg_modifiers"},
      {"PUT", "/hotplug/memory", R"({"total_size_mib": 1024})", 204, ""},
      {"PUT", "/hotplug/memory", R"({"total_size_mib": 100})", 400, "total_size_mib"},
      {"GET", "/hotplug/memory", std::nullopt, 400, pre},
      {"PATCH", "/hotplug/memory", R"({"requested_size_mib": 128})", 400, pre},
      {"PATCH", "/vm", R"({"state": "Paused"})", 400, pre},
      {"PATCH", "/vm", R"({"state": "Frozen"})", 400, deser},
      {"PUT", "/actions", R"({"action_type": "FlushMetrics"})", 400, pre},
      {"PUT", "/actions", R"({"action_type": "Explode"})", 400, deser},
      {"PUT", "/snapshot/create", R"({"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"})", 400,
       pre},
      {"PUT", "/snapshot/create", R"({"snapshot_path": "/tmp/s"})", 400, "mem_file_path"},
      {"PUT", "/snapshot/load", R"({"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"})", 400,
       "not allowed after configuring boot-specific resources"},
      {"PUT", "/snapshot/load", R"({"snapshot_path": "/tmp/s"})", 400, deser},
      {"PUT", "/snapshot/restore", "{}", 400, "Invalid request method and/or path"},
      {"DELETE", "/drives/rootfs", std::nullopt, 400,
       "Invalid request method and/or path: DELETE /drives/rootfs."},
      {"PUT", "/nothing", std::nullopt, 400, "Empty PUT request."},
  };
  Client client(socket_);
  ASSERT_TRUE(client.connected());
  run_cases(client, cases);  // one keep-alive connection for all of them

  auto config = client.request("GET", "/vm/config");
  ASSERT_TRUE(config);
  ASSERT_EQ(config->status, 200);
  auto j = config->json_body();
  EXPECT_EQ(j["machine-config"]["mem_size_mib"], 96);
  EXPECT_EQ(j["boot-source"]["kernel_image_path"], kernel);
  EXPECT_EQ(j["drives"].size(), 1u);
  EXPECT_EQ(j["network-interfaces"][0]["host_dev_name"], "ign-tap-t0");
  EXPECT_EQ(j["pmem"].size(), 1u);
  EXPECT_EQ(j["vsock"]["guest_cid"], 3);
  EXPECT_EQ(j["balloon"]["amount_mib"], 8);
  EXPECT_EQ(j["mmds-config"]["version"], "V2");
  EXPECT_EQ(j["memory-hotplug"]["total_size_mib"], 1024);
  auto deprecated = client.request("PUT", "/mmds/config", R"({"network_interfaces": ["eth0"]})");
  ASSERT_TRUE(deprecated);
  EXPECT_EQ(deprecated->status, 204);
  EXPECT_TRUE(deprecated->deprecation);
}

TEST_F(ApiServerTest, BootPauseResumeThroughTheApi) {
  Client client(socket_);
  ASSERT_TRUE(client.connected());
  json boot = {{"kernel_image_path", test::guest_image("ignition-test.elf")},
               {"boot_args", "ign.tests=boot ign.exit=hang"}};
  ASSERT_EQ(client.request_json("PUT", "/boot-source", boot)->status, 204);
  ASSERT_EQ(
      client.request_json("PUT", "/machine-config", json{{"vcpu_count", 1}, {"mem_size_mib", 64}})
          ->status,
      204);
  auto start = client.request_json("PUT", "/actions", json{{"action_type", "InstanceStart"}});
  ASSERT_TRUE(start);
  ASSERT_EQ(start->status, 204) << start->body;

  auto report = wait_for_console([](const test::GuestReport& r) { return r.ended; });
  EXPECT_TRUE(report.ended) << report.summary();
  EXPECT_TRUE(report.passed("boot")) << report.summary();
  EXPECT_TRUE(report.fails.empty()) << report.summary();
  EXPECT_EQ(client.request("GET", "/")->json_body()["state"], "Running");

  auto paused = client.request_json("PATCH", "/vm", json{{"state", "Paused"}});
  ASSERT_TRUE(paused);
  EXPECT_EQ(paused->status, 204) << paused->body;
  EXPECT_EQ(client.request("GET", "/")->json_body()["state"], "Paused");
  auto resumed = client.request_json("PATCH", "/vm", json{{"state", "Resumed"}});
  ASSERT_TRUE(resumed);
  EXPECT_EQ(resumed->status, 204) << resumed->body;
  EXPECT_EQ(client.request("GET", "/")->json_body()["state"], "Running");

  std::string post(kNotSupportedPostBoot);
  std::vector<Case> after = {
      {"PUT", "/machine-config", R"({"vcpu_count": 1, "mem_size_mib": 128})", 400, post},
      {"PATCH", "/machine-config", R"({"vcpu_count": 2})", 400, post},
      {"PUT", "/boot-source", boot.dump(), 400, post},
      {"PUT", "/actions", R"({"action_type": "InstanceStart"})", 400, post},
      {"PUT", "/actions", R"({"action_type": "FlushMetrics"})", 204, ""},
      {"PUT", "/actions", R"({"action_type": "SendCtrlAltDel"})", 204, ""},
      {"PATCH", "/balloon", R"({"amount_mib": 1})", 400, "No balloon device found."},
      {"PATCH", "/drives/rootfs", R"({"drive_id": "rootfs"})", 400, "No drive with id"},
      {"PUT", "/snapshot/create", R"({"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"})", 400,
       "must be paused"},
      {"PUT", "/snapshot/load", R"({"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"})", 400,
       post},
      {"GET", "/machine-config", std::nullopt, 200, "\"mem_size_mib\":64"},
      {"GET", "/vm/config", std::nullopt, 200, "ign.exit=hang"},
      {"PUT", "/mmds", R"({"k": "v"})", 204, ""},
  };
  run_cases(client, after);

  // A paused VM still stops when asked (the process exiting on SIGTERM relies on it).
  ASSERT_EQ(client.request_json("PATCH", "/vm", json{{"state", "Paused"}})->status, 204);
  controller_->stop();
  pollfd pfd{controller_->exit_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 10000), 1) << "the paused VM did not stop";
  auto outcome = controller_->outcome();
  ASSERT_TRUE(outcome && outcome->ok());
  EXPECT_EQ((*outcome)->kind, vmm::RunOutcome::Kind::Shutdown);
  EXPECT_EQ(client.request("GET", "/")->json_body()["state"], "Stopped");
  auto late = client.request_json("PATCH", "/vm", json{{"state", "Resumed"}});
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 400);
  EXPECT_NE(late->fault().find("has stopped"), std::string::npos) << late->fault();
}

TEST_F(ApiServerTest, KeepAliveAndSeveralConnections) {
  Client a(socket_), b(socket_), c(socket_);
  ASSERT_TRUE(a.connected() && b.connected() && c.connected());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(a.request("GET", "/version")->status, 200);
    EXPECT_EQ(b.request("GET", "/")->status, 200);
  }
  // Two requests in one write (pipelined) get two responses in order.
  ASSERT_TRUE(c.send_raw(
      "GET /version HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto first = c.read_reply();
  auto second = c.read_reply();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->status, 200);
  EXPECT_EQ(second->status, 400);
  // "Connection: close" is honoured.
  auto last = a.request("GET", "/", std::nullopt, "Connection: close\r\n");
  ASSERT_TRUE(last);
  EXPECT_EQ(last->status, 200);
  EXPECT_TRUE(a.closed_by_server());
}

TEST_F(ApiServerTest, MalformedRequestsGetAFaultAndTheServerCarriesOn) {
  const std::vector<std::string> garbage = {
      "BLAH\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "PUT /actions HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "PUT /actions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      std::string("GET /\0/ HTTP/1.1\r\n\r\n", 20),
      "GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
      "PUT /mmds HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const auto& bytes : garbage) {
    SCOPED_TRACE(bytes);
    Client client(socket_);
    ASSERT_TRUE(client.connected());
    ASSERT_TRUE(client.send_raw(bytes));
    auto reply = client.read_reply();
    ASSERT_TRUE(reply) << "no response";
    EXPECT_EQ(reply->status, 400);
    EXPECT_NE(reply->fault(), "") << reply->body;
    EXPECT_TRUE(client.closed_by_server());
  }
  // A deeply nested body is refused without recursing over it.
  Client deep(socket_);
  auto nested =
      deep.request("PUT", "/mmds",
                   std::optional<std::string>(std::string(30000, '[') + std::string(30000, ']')));
  ASSERT_TRUE(nested);
  EXPECT_EQ(nested->status, 400);
  EXPECT_NE(nested->fault().find("recursion limit"), std::string::npos) << nested->fault();
  // Invalid UTF-8 in the path is echoed back safely.
  Client utf(socket_);
  auto reply = utf.request("GET", "/\xff\xfe");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 400);
  EXPECT_TRUE(reply->json_body().is_object());
  // Clients that vanish mid-request or mid-body.
  for (std::string partial :
       {"GET / HT", "PUT /mmds HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"a"}) {
    Client gone(socket_);
    ASSERT_TRUE(gone.send_raw(partial));
  }
  Client after(socket_);
  ASSERT_TRUE(after.connected());
  auto ok = after.request("GET", "/version");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(ApiServerTest, OversizedBodiesAndHeaders) {
  Client client(socket_);
  std::string big(100 << 10, 'x');  // the fixture's limit is 64 KiB
  auto reply = client.request("PUT", "/mmds", "\"" + big + "\"");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 413);
  EXPECT_NE(reply->fault().find("is larger than the limit of 65536"), std::string::npos)
      << reply->fault();
  EXPECT_TRUE(client.closed_by_server());

  // Only the header announces the size: refused before the body is sent.
  Client announced(socket_);
  ASSERT_TRUE(announced.send_raw("PUT /mmds HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n"));
  auto early = announced.read_reply();
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 413);

  Client headers(socket_);
  auto huge =
      headers.request("GET", "/", std::nullopt, "X-Big: " + std::string(32 << 10, 'h') + "\r\n");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 400);
  EXPECT_NE(huge->fault().find("headers are larger"), std::string::npos) << huge->fault();
  EXPECT_EQ(Client(socket_).request("GET", "/version")->status, 200);
}

TEST_F(ApiServerTest, ExpectContinueIsAnswered) {
  Client client(socket_);
  std::string body = R"({"big": ")" + std::string(4000, 'b') + "\"}";
  ASSERT_TRUE(client.send_raw(fmt::format(
      "PUT /mmds HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
      body.size())));
  auto cont = client.read_reply(5s);
  ASSERT_TRUE(cont);
  EXPECT_EQ(cont->status, 100);
  ASSERT_TRUE(client.send_raw(body));
  auto done = client.read_reply();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, 204) << done->body;
  EXPECT_EQ(client.request("GET", "/mmds")->json_body()["big"].get<std::string>().size(), 4000u);
}

TEST_F(ApiServerTest, StopClosesConnectionsAndRemovesTheSocket) {
  Client client(socket_);
  ASSERT_EQ(client.request("GET", "/")->status, 200);
  server_->stop();
  EXPECT_TRUE(client.closed_by_server());
  struct stat st {};
  EXPECT_NE(::lstat(socket_.c_str(), &st), 0) << "socket file left behind";
  EXPECT_FALSE(Client(socket_).connected());
  server_->stop();  // idempotent
}

TEST(ApiSocketFile, StaleSocketIsReplacedLiveOneAndOtherFilesAreNot) {
  auto handler = [](const ApiRequest&) { return no_content(); };
  // A socket file nobody listens on (its server died).
  std::string stale = unique_path("stale") + ".sock";
  {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    stale.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  }
  auto server = HttpServer::start(stale, handler);
  ASSERT_TRUE(server.ok()) << server.error().message;
  EXPECT_EQ(Client(stale).request("GET", "/")->status, 204);

  auto second = HttpServer::start(stale, handler);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
  EXPECT_EQ(Client(stale).request("GET", "/")->status, 204) << "the live server was disturbed";

  std::string file = temp_file("regular", "keep me");
  auto on_file = HttpServer::start(file, handler);
  ASSERT_FALSE(on_file.ok());
  EXPECT_NE(on_file.error().message.find("not a Unix socket"), std::string::npos);
  std::ifstream in(file);
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "keep me");

  auto too_long = HttpServer::start("/tmp/" + std::string(200, 'x'), handler);
  EXPECT_FALSE(too_long.ok());
}

TEST(ApiServerConcurrency, ManyClientsAtOnce) {
  std::atomic<int> handled{0};
  std::string path = unique_path("many") + ".sock";
  auto server = HttpServer::start(path, [&](const ApiRequest& r) {
    ++handled;
    return json_response({{"target", r.target}});
  });
  ASSERT_TRUE(server.ok()) << server.error().message;
  std::vector<std::future<int>> clients;
  for (int t = 0; t < 8; ++t) {
    clients.push_back(std::async(std::launch::async, [&path, t] {
      Client c(path);
      int ok = 0;
      for (int i = 0; i < 25; ++i) {
        std::string target = fmt::format("/c{}/{}", t, i);
        auto r = c.request("GET", target);
        if (r && r->status == 200 && r->json_body()["target"] == target) ++ok;
      }
      return ok;
    }));
  }
  int total = 0;
  for (auto& f : clients) total += f.get();
  EXPECT_EQ(total, 200);
  EXPECT_EQ(handled.load(), 200);
}

std::string write_config(const std::string& boot_args, const std::string& extra = "") {
  json config = {
      {"boot-source",
       {{"kernel_image_path", test::guest_image("ignition-test.elf")}, {"boot_args", boot_args}}},
      {"machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 64}}}};
  if (!extra.empty()) config["bogus"] = extra;
  return temp_file("config", config.dump());
}

TEST(RunApiServer, ConfigFileBootsAndExitsWhenTheGuestStops) {
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
  ::fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
  UniqueFd console_read(fds[0]), console_write(fds[1]);
  ApiOptions options;
  options.api_sock = unique_path("run") + ".sock";
  options.config_file = write_config("ign.tests=boot ign.exit=shutdown");
  options.console_in = -1;
  options.console_out = console_write.get();
  options.handle_signals = false;
  auto status = std::async(std::launch::async, [&] { return run_api_server(options); });
  ASSERT_EQ(status.wait_for(60s), std::future_status::ready) << "the guest did not stop";
  EXPECT_EQ(status.get(), 0);
  auto report = test::parse_guest_report(drain(console_read.get()));
  EXPECT_TRUE(report.passed("boot")) << report.summary();
  struct stat st {};
  EXPECT_NE(::lstat(options.api_sock.c_str(), &st), 0) << "socket file left behind";
}

TEST(RunApiServer, ApiOnlyStartsWhenAskedAndExitsWithTheGuest) {
  ApiOptions options;
  options.api_sock = unique_path("run-api") + ".sock";
  options.console_in = -1;
  options.console_out = -1;
  options.handle_signals = false;
  auto status = std::async(std::launch::async, [&] { return run_api_server(options); });
  std::optional<Client> client;
  for (int i = 0; i < 200 && !(client && client->connected()); ++i) {
    std::this_thread::sleep_for(10ms);
    client.emplace(options.api_sock);
  }
  ASSERT_TRUE(client && client->connected());
  EXPECT_EQ(client->request("GET", "/")->json_body()["state"], "Not started");
  json boot = {{"kernel_image_path", test::guest_image("ignition-test.elf")},
               {"boot_args", "ign.tests=boot ign.exit=reboot"}};
  ASSERT_EQ(client->request_json("PUT", "/boot-source", boot)->status, 204);
  EXPECT_EQ(status.wait_for(100ms), std::future_status::timeout) << "exited before InstanceStart";
  ASSERT_EQ(client->request_json("PUT", "/actions", json{{"action_type", "InstanceStart"}})->status,
            204);
  ASSERT_EQ(status.wait_for(60s), std::future_status::ready);
  EXPECT_EQ(status.get(), 0);
}

TEST(RunApiServer, BadInputIsExitStatusOne) {
  ApiOptions options;
  options.api_sock = unique_path("bad") + ".sock";
  options.handle_signals = false;
  options.config_file = write_config("x", "unknown key");
  EXPECT_EQ(run_api_server(options), 1);
  options.config_file = "/nonexistent/config.json";
  EXPECT_EQ(run_api_server(options), 1);
  ApiOptions no_api;
  no_api.no_api = true;
  no_api.handle_signals = false;
  EXPECT_EQ(run_api_server(no_api), 1);
}

}  // namespace
}  // namespace ignition::api
