// The API router and controller without sockets or KVM: the route table against the spec,
// Firecracker's faults, validation before mutation, and the pre-/post-boot rules, with a
// fake VM standing in for the machine.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "api/router.hpp"
#include "api/vmm_controller.hpp"
#include "support/paths.hpp"

namespace ignition::api {
namespace {

using nlohmann::json;

// What the fake launcher saw and did, shared with the test.
struct FakeWorld {
  int launches = 0;
  std::optional<std::string> launch_error;  // the next launch fails with this
  config::VmConfig launched{};
  int restores = 0;
  std::optional<std::string> restore_error;  // the next snapshot load fails with this
  config::SnapshotLoadParams loaded{};
  VmExitCallback on_exit{};
  bool stopped = false;
  int calls = 0;  // calls into the machine (which the fake cannot make)
};

// The configuration a fake snapshot holds.
config::VmConfig snapshot_config() {
  config::VmConfig c;
  c.boot_source.kernel_image_path = "/from/the/snapshot";
  c.machine_config.vcpu_count = 3;
  c.machine_config.mem_size_mib = 96;
  return c;
}

class FakeVm final : public RunningVm {
 public:
  explicit FakeVm(std::shared_ptr<FakeWorld> world, bool paused = false)
      : world_(std::move(world)), paused_(paused) {}
  Result<void> call(std::function<Result<void>(vmm::Machine&)>,
                    std::chrono::milliseconds) override {
    ++world_->calls;
    return err("the fake VM has no machine");
  }
  Result<void> pause(std::chrono::milliseconds) override {
    paused_ = true;
    return {};
  }
  Result<void> resume(std::chrono::milliseconds) override {
    paused_ = false;
    return {};
  }
  bool paused() const override { return paused_; }
  void stop() override {
    world_->stopped = true;
    if (world_->on_exit) world_->on_exit(vmm::RunOutcome{vmm::RunOutcome::Kind::Shutdown, "stop"});
  }

 private:
  std::shared_ptr<FakeWorld> world_;
  bool paused_ = false;
};

ControllerOptions fake_options(const std::shared_ptr<FakeWorld>& world) {
  ControllerOptions options;
  options.instance_id = "test-vm";
  options.launcher = [w = world](const config::VmConfig& c,
                                 VmExitCallback on_exit) -> Result<std::unique_ptr<RunningVm>> {
    if (w->launch_error) return Error{*std::exchange(w->launch_error, std::nullopt)};
    ++w->launches;
    w->launched = c;
    w->on_exit = std::move(on_exit);
    return std::unique_ptr<RunningVm>(std::make_unique<FakeVm>(w));
  };
  options.restorer = [w = world](const config::SnapshotLoadParams& p,
                                 VmExitCallback on_exit) -> Result<RestoredVm> {
    if (w->restore_error) return Error{*std::exchange(w->restore_error, std::nullopt)};
    ++w->restores;
    w->loaded = p;
    w->on_exit = std::move(on_exit);
    return RestoredVm{std::make_unique<FakeVm>(w, !p.resume_vm), snapshot_config()};
  };
  return options;
}

std::string temp_file(const std::string& name, const std::string& content = "x") {
  std::string path =
      ::testing::TempDir() + "/api_router_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path) << content;
  return path;
}

class ApiRouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    world_ = std::make_shared<FakeWorld>();
    auto controller = VmmController::create(fake_options(world_));
    ASSERT_TRUE(controller.ok()) << controller.error().message;
    controller_ = std::move(controller).value();
    router_ = std::make_unique<Router>(*controller_);
    kernel_ = temp_file("kernel");
  }

  ApiResponse call(Method method, const std::string& target, const std::string& body = "") {
    ApiRequest r;
    r.method = method;
    r.method_name = std::string(to_string(method));
    r.target = target;
    r.body = body;
    return router_->handle(r);
  }
  ApiResponse get(const std::string& t) { return call(Method::kGet, t); }
  ApiResponse put(const std::string& t, const json& body) {
    return call(Method::kPut, t, body.dump());
  }
  ApiResponse patch(const std::string& t, const json& body) {
    return call(Method::kPatch, t, body.dump());
  }

  static std::string fault_of(const ApiResponse& r) {
    auto j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("fault_message")) return "<no fault>";
    return j["fault_message"].get<std::string>();
  }
  static json body_of(const ApiResponse& r) { return json::parse(r.body, nullptr, false); }

  void expect_fault(const ApiResponse& r, const std::string& needle, int status = 400) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_NE(fault_of(r).find(needle), std::string::npos)
        << "expected '" << needle << "' in: " << fault_of(r);
  }

  void configure_bootable() {
    ASSERT_EQ(put("/boot-source", {{"kernel_image_path", kernel_}}).status, 204);
  }
  void start() {
    configure_bootable();
    auto r = put("/actions", {{"action_type", "InstanceStart"}});
    ASSERT_EQ(r.status, 204) << r.body;
  }
  std::string state() { return body_of(get("/"))["state"].get<std::string>(); }

  std::shared_ptr<FakeWorld> world_;
  std::unique_ptr<VmmController> controller_;
  std::unique_ptr<Router> router_;
  std::string kernel_;
};

// Every path and method in Firecracker's OpenAPI spec has a route. The spec is read with a
// line scan: paths are "  /path:" lines and methods "    get:" lines under them.
TEST_F(ApiRouterTest, EveryRouteInTheSpecExists) {
  // The spec is Firecracker's file, kept beside the repository (../shared/), not in it.
  std::string spec_path = test::source_dir() + "/../shared/firecracker-api.yaml";
  if (!std::ifstream(spec_path)) spec_path = "/work/shared/firecracker-api.yaml";
  std::ifstream spec(spec_path);
  if (!spec) GTEST_SKIP() << "no spec at " << spec_path;
  std::set<std::string> routes;
  for (const auto& r : router_->routes()) {
    routes.insert(std::string(to_string(r.method)) + " " + r.pattern);
  }
  std::regex path_line(R"(^  (/[^:]*):\s*$)"), method_line(R"(^    (get|put|patch|delete):\s*$)");
  std::string line, current;
  int seen = 0;
  while (std::getline(spec, line)) {
    std::smatch m;
    if (std::regex_match(line, m, path_line)) {
      current = m[1];
    } else if (line.rfind("definitions:", 0) == 0) {
      current.clear();
    } else if (!current.empty() && std::regex_match(line, m, method_line)) {
      std::string method = m[1];
      for (auto& ch : method) ch = static_cast<char>(::toupper(ch));
      ++seen;
      EXPECT_TRUE(routes.count(method + " " + current))
          << "no route for " << method << " " << current;
    }
  }
  EXPECT_GE(seen, 35) << "the spec scan found too few operations";
}

TEST_F(ApiRouterTest, UnknownRoutesAndMethodsAreFirecrackerFaults) {
  expect_fault(get("/nothing"), "Invalid request method and/or path: GET /nothing.");
  expect_fault(call(Method::kPut, "/version", "{}"),
               "Invalid request method and/or path: PUT /version.");
  ApiRequest post;
  post.method = Method::kOther;
  post.method_name = "POST";
  post.target = "/actions";
  post.body = R"({"action_type":"InstanceStart"})";
  expect_fault(router_->handle(post), "Invalid request method and/or path: POST /actions.");
  expect_fault(get("/drives/a/b"), "Invalid request method and/or path");
  expect_fault(call(Method::kGet, "/", "{}"), "GET request cannot have a body.");
  expect_fault(call(Method::kPut, "/boot-source"), "Empty PUT request.");
  expect_fault(call(Method::kPatch, "/machine-config"), "Empty PATCH request.");
  expect_fault(patch("/machine-config", json::object()), "Empty PATCH request.");
  expect_fault(call(Method::kPut, "/snapshot", "{}"), "Missing snapshot operation type.");
  expect_fault(call(Method::kPut, "not-a-path", "{}"), "Invalid request method and/or path");
}

TEST_F(ApiRouterTest, BadBodiesAreDeserializationFaults) {
  auto r = call(Method::kPut, "/machine-config", "{\"vcpu_count\": 2,");
  expect_fault(r,
               "An error occurred when deserializing the json body of a request: malformed JSON");
  expect_fault(put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}, {"bogus", 1}}),
               "bogus");
  expect_fault(put("/actions", {{"action_type", "Reboot"}}), "action_type");
  expect_fault(put("/boot-source", json::array()), "An error occurred when deserializing");
  // Deep nesting is refused before anything recurses over it; brackets in strings do not count.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_fault(call(Method::kPut, "/mmds", deep), "recursion limit exceeded");
  expect_fault(call(Method::kPut, "/machine-config", std::string(200, '{')), "recursion limit");
  std::string fine = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(call(Method::kPut, "/mmds", fine).status, 204);
  EXPECT_EQ(put("/mmds", {{"s", std::string(1000, '[') + "\\\"{"}}).status, 204);
  // Duplicate keys are rejected, not silently merged.
  expect_fault(call(Method::kPut, "/actions",
                    R"({"action_type":"InstanceStart","action_type":"FlushMetrics"})"),
               "duplicate field");
}

TEST_F(ApiRouterTest, QueriesAndAbsoluteTargetsRouteByPath) {
  EXPECT_EQ(get("/version?verbose=1").status, 200);
  EXPECT_EQ(get("http://localhost/version").status, 200);
  EXPECT_EQ(get("/machine-config/").status, 200);
  EXPECT_EQ(request_path("/a/b?x#y"), "/a/b");
  EXPECT_EQ(request_path("http://localhost"), "/");
  EXPECT_EQ(request_path("localhost/a"), std::nullopt);
}

TEST_F(ApiRouterTest, InstanceInfoAndVersion) {
  auto info = get("/");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(body_of(info), (json{{"app_name", "ignition"},
                                 {"id", "test-vm"},
                                 {"state", "Not started"},
                                 {"vmm_version", std::string(kVmmVersion)}}));
  EXPECT_EQ(body_of(get("/version")), (json{{"firecracker_version", std::string(kVmmVersion)}}));
}

TEST_F(ApiRouterTest, MachineConfigPutPatchGetAndRejectsInvalidWithoutChange) {
  EXPECT_EQ(body_of(get("/machine-config"))["vcpu_count"], 1);
  EXPECT_EQ(put("/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 256}}).status, 204);
  auto mc = body_of(get("/machine-config"));
  EXPECT_EQ(mc["vcpu_count"], 2);
  EXPECT_EQ(mc["mem_size_mib"], 256);
  EXPECT_EQ(patch("/machine-config", {{"mem_size_mib", 512}}).status, 204);
  EXPECT_EQ(body_of(get("/machine-config"))["mem_size_mib"], 512);
  EXPECT_EQ(body_of(get("/machine-config"))["vcpu_count"], 2);

  auto before = get("/vm/config").body;
  EXPECT_EQ(put("/machine-config", {{"vcpu_count", 0}, {"mem_size_mib", 128}}).status, 400);
  expect_fault(patch("/machine-config", {{"vcpu_count", 3}, {"smt", true}}),
               "Machine config error");
  EXPECT_EQ(get("/vm/config").body, before);

  auto deprecated =
      put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}, {"cpu_template", "None"}});
  EXPECT_EQ(deprecated.status, 204) << deprecated.body;
  EXPECT_TRUE(deprecated.deprecated);
  EXPECT_FALSE(put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}).deprecated);
}

TEST_F(ApiRouterTest, BootSourceMustNameReadableFiles) {
  expect_fault(put("/boot-source", {{"kernel_image_path", "/nonexistent/vmlinux"}}),
               "Boot source error: The kernel file cannot be opened: /nonexistent/vmlinux");
  expect_fault(
      put("/boot-source", {{"kernel_image_path", kernel_}, {"initrd_path", "/nonexistent/initrd"}}),
      "The initrd file cannot be opened");
  EXPECT_EQ(body_of(get("/vm/config"))["boot-source"]["kernel_image_path"], "");
  EXPECT_EQ(
      put("/boot-source", {{"kernel_image_path", kernel_}, {"boot_args", "console=ttyS0"}}).status,
      204);
  auto bs = body_of(get("/vm/config"))["boot-source"];
  EXPECT_EQ(bs["kernel_image_path"], kernel_);
  EXPECT_EQ(bs["boot_args"], "console=ttyS0");
}

TEST_F(ApiRouterTest, DrivesCheckIdsFilesAndRootUniqueness) {
  std::string disk = temp_file("disk", std::string(4096, '\0'));
  json rootfs = {{"drive_id", "rootfs"}, {"path_on_host", disk}, {"is_root_device", true}};
  expect_fault(put("/drives", rootfs), "The ID cannot be empty.");
  expect_fault(put("/drives/", rootfs), "The ID cannot be empty.");
  expect_fault(put("/drives/root-fs", rootfs),
               "API Resource IDs can only contain alphanumeric characters and underscores.");
  expect_fault(put("/drives/other", rootfs),
               "The id from the path does not match the id from the body!");
  EXPECT_EQ(put("/drives/rootfs", rootfs).status, 204);

  json second = {{"drive_id", "data"}, {"path_on_host", disk}, {"is_root_device", true}};
  expect_fault(put("/drives/data", second), "Drive config error: only one root device");
  json missing = {
      {"drive_id", "data"}, {"path_on_host", "/nonexistent/disk"}, {"is_root_device", false}};
  expect_fault(put("/drives/data", missing), "Drive config error: Unable to open the backing file");
  second["is_root_device"] = false;
  EXPECT_EQ(put("/drives/data", second).status, 204);
  second["is_read_only"] = true;
  EXPECT_EQ(put("/drives/data", second).status, 204);  // same id: replaced, not added

  auto drives = body_of(get("/vm/config"))["drives"];
  ASSERT_EQ(drives.size(), 2u);
  EXPECT_EQ(drives[1]["drive_id"], "data");
  EXPECT_EQ(drives[1]["is_read_only"], true);
  // PATCH is post-boot only.
  expect_fault(patch("/drives/data", {{"drive_id", "data"}, {"path_on_host", disk}}),
               std::string(kNotSupportedPreBoot));
}

TEST_F(ApiRouterTest, NetworkInterfacesAndMmdsConfig) {
  json eth0 = {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", "06:00:AC:10:00:02"}};
  expect_fault(put("/network-interfaces/eth1", eth0),
               "The id from the path [eth1] does not match the id from the body [eth0]!");
  expect_fault(put("/mmds/config", {{"network_interfaces", {"eth0"}}}), "MMDS config error");
  EXPECT_EQ(put("/network-interfaces/eth0", eth0).status, 204);
  json dup = {{"iface_id", "eth1"}, {"host_dev_name", "tap0"}};
  expect_fault(put("/network-interfaces/eth1", dup), "Network config error");
  auto v1 = put("/mmds/config", {{"network_interfaces", {"eth0"}}});
  EXPECT_EQ(v1.status, 204) << v1.body;
  EXPECT_TRUE(v1.deprecated);
  auto v2 = put("/mmds/config", {{"network_interfaces", {"eth0"}}, {"version", "V2"}});
  EXPECT_EQ(v2.status, 204);
  EXPECT_FALSE(v2.deprecated);
  auto cfg = body_of(get("/vm/config"));
  EXPECT_EQ(cfg["network-interfaces"].size(), 1u);
  EXPECT_EQ(cfg["mmds-config"]["version"], "V2");
}

TEST_F(ApiRouterTest, BalloonPreBoot) {
  expect_fault(get("/balloon"), "Balloon config error: No balloon device found.");
  expect_fault(put("/balloon", {{"amount_mib", 4096}, {"deflate_on_oom", false}}),
               "Balloon config error");
  EXPECT_EQ(put("/balloon", {{"amount_mib", 16}, {"deflate_on_oom", true}}).status, 204);
  auto b = get("/balloon");
  ASSERT_EQ(b.status, 200);
  EXPECT_EQ(body_of(b)["amount_mib"], 16);
  EXPECT_EQ(body_of(b)["deflate_on_oom"], true);
  expect_fault(patch("/balloon", {{"amount_mib", 8}}), std::string(kNotSupportedPreBoot));
  expect_fault(get("/balloon/statistics"), std::string(kNotSupportedPreBoot));
  expect_fault(call(Method::kPatch, "/balloon/hinting/start"), std::string(kNotSupportedPreBoot));
  expect_fault(patch("/balloon/hinting/start", {{"bogus", 1}}),
               "An error occurred when deserializing");
}

TEST_F(ApiRouterTest, SmallDevicesLandInTheConfig) {
  EXPECT_EQ(put("/vsock", {{"guest_cid", 3}, {"uds_path", "/tmp/v.sock"}}).status, 204);
  auto deprecated =
      put("/vsock", {{"guest_cid", 4}, {"uds_path", "/tmp/v.sock"}, {"vsock_id", "v"}});
  EXPECT_EQ(deprecated.status, 204);
  EXPECT_TRUE(deprecated.deprecated);
  expect_fault(put("/vsock", {{"guest_cid", 1}, {"uds_path", "/tmp/v.sock"}}), "guest_cid");
  EXPECT_EQ(put("/entropy", json::object()).status, 204);
  EXPECT_EQ(put("/serial", {{"serial_out_path", "/tmp/serial.out"}}).status, 204);
  EXPECT_EQ(put("/logger", {{"level", "Debug"}}).status, 204);
  EXPECT_EQ(put("/cpu-config", {{"kvm_capabilities", {"!121"}}}).status, 204);
  std::string pmem = temp_file("pmem", std::string(4096, '\0'));
  EXPECT_EQ(put("/pmem/pm0", {{"id", "pm0"}, {"path_on_host", pmem}}).status, 204);
  expect_fault(put("/pmem/pm1", {{"id", "pm0"}, {"path_on_host", pmem}}), "does not match");
  EXPECT_EQ(put("/hotplug/memory", {{"total_size_mib", 1024}}).status, 204);
  expect_fault(get("/hotplug/memory"), std::string(kNotSupportedPreBoot));
  auto cfg = body_of(get("/vm/config"));
  EXPECT_EQ(cfg["vsock"]["guest_cid"], 4);
  EXPECT_TRUE(cfg["entropy"].is_object());
  // Kept for the machine, but not shown: Firecracker's FullVmConfiguration has no serial.
  EXPECT_FALSE(cfg.contains("serial"));
  ASSERT_TRUE(controller_->vm_config().serial.has_value());
  EXPECT_EQ(controller_->vm_config().serial->serial_out_path, "/tmp/serial.out");
  EXPECT_EQ(cfg["logger"]["level"], "Debug");
  EXPECT_EQ(cfg["cpu-config"]["kvm_capabilities"], json({"!121"}));
  EXPECT_EQ(cfg["pmem"].size(), 1u);
  EXPECT_EQ(cfg["memory-hotplug"]["total_size_mib"], 1024);
}

TEST_F(ApiRouterTest, MmdsStorePutPatchGet) {
  EXPECT_EQ(body_of(get("/mmds")), json::object());
  expect_fault(patch("/mmds", {{"a", 1}}), "MMDS error: The MMDS data store is not initialized.");
  json doc = {{"latest", {{"meta-data", {{"ami-id", "ami-1"}, {"hostname", "vm"}}}}}, {"drop", 1}};
  EXPECT_EQ(put("/mmds", doc).status, 204);
  EXPECT_EQ(body_of(get("/mmds")), doc);
  EXPECT_EQ(
      patch("/mmds", {{"latest", {{"meta-data", {{"hostname", "renamed"}, {"ami-id", nullptr}}}}},
                      {"drop", nullptr},
                      {"new", {1, 2}}})
          .status,
      204);
  EXPECT_EQ(body_of(get("/mmds")),
            (json{{"latest", {{"meta-data", {{"hostname", "renamed"}}}}}, {"new", {1, 2}}}));
  auto before = get("/mmds").body;
  auto big = put("/mmds", {{"blob", std::string(kDefaultMmdsLimitBytes, 'x')}});
  expect_fault(big, "MMDS limit exceeded error", 413);
  expect_fault(patch("/mmds", {{"blob", std::string(kDefaultMmdsLimitBytes, 'x')}}),
               "MMDS limit exceeded error", 413);
  EXPECT_EQ(get("/mmds").body, before);
}

TEST_F(ApiRouterTest, PostBootOnlyActionsAreRefusedBeforeStart) {
  std::string pre(kNotSupportedPreBoot);
  expect_fault(patch("/vm", {{"state", "Paused"}}), pre);
  expect_fault(put("/actions", {{"action_type", "FlushMetrics"}}), pre);
  expect_fault(put("/actions", {{"action_type", "SendCtrlAltDel"}}), pre);
  expect_fault(put("/snapshot/create", {{"snapshot_path", "/tmp/s"}, {"mem_file_path", "/tmp/m"}}),
               pre);
  expect_fault(patch("/network-interfaces/eth0", {{"iface_id", "eth0"}}), pre);
  expect_fault(patch("/pmem/p", {{"id", "p"}}), pre);
  expect_fault(patch("/hotplug/memory", {{"requested_size_mib", 0}}), pre);
  expect_fault(patch("/vm", {{"state", "Sleeping"}}), "An error occurred when deserializing");
  EXPECT_EQ(world_->launches, 0);
}

TEST_F(ApiRouterTest, StartNeedsAKernelAndReportsLaunchFailures) {
  expect_fault(put("/actions", {{"action_type", "InstanceStart"}}),
               "Start microvm error: Cannot start microvm without kernel configuration.");
  configure_bootable();
  world_->launch_error = "no /dev/kvm";
  expect_fault(put("/actions", {{"action_type", "InstanceStart"}}),
               "Start microvm error: no /dev/kvm");
  EXPECT_EQ(state(), "Not started");
  EXPECT_EQ(put("/actions", {{"action_type", "InstanceStart"}}).status, 204);
  EXPECT_EQ(world_->launches, 1);
}

TEST_F(ApiRouterTest, StartLaunchesTheConfiguredVmAndLocksPreBootResources) {
  EXPECT_EQ(put("/machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 64}}).status, 204);
  start();
  EXPECT_EQ(world_->launches, 1);
  EXPECT_EQ(config::to_json(world_->launched), body_of(get("/vm/config")));
  EXPECT_EQ(world_->launched.machine_config.vcpu_count, 2u);
  EXPECT_EQ(state(), "Running");

  std::string post(kNotSupportedPostBoot);
  auto before = get("/vm/config").body;
  expect_fault(put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}), post);
  expect_fault(patch("/machine-config", {{"vcpu_count", 1}}), post);
  expect_fault(put("/boot-source", {{"kernel_image_path", kernel_}}), post);
  expect_fault(
      put("/drives/d", {{"drive_id", "d"}, {"path_on_host", kernel_}, {"is_root_device", false}}),
      post);
  expect_fault(put("/network-interfaces/e", {{"iface_id", "e"}, {"host_dev_name", "tap9"}}), post);
  expect_fault(put("/vsock", {{"guest_cid", 3}, {"uds_path", "/tmp/v"}}), post);
  expect_fault(put("/entropy", json::object()), post);
  expect_fault(put("/balloon", {{"amount_mib", 1}, {"deflate_on_oom", false}}), post);
  expect_fault(put("/logger", {{"level", "Info"}}), post);
  expect_fault(put("/serial", json::object()), post);
  expect_fault(put("/cpu-config", json::object()), post);
  expect_fault(put("/mmds/config", {{"network_interfaces", {"eth0"}}}), post);
  expect_fault(put("/hotplug/memory", {{"total_size_mib", 1024}}), post);
  expect_fault(put("/snapshot/load", {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}}), post);
  expect_fault(put("/actions", {{"action_type", "InstanceStart"}}), post);
  EXPECT_EQ(get("/vm/config").body, before);
  EXPECT_EQ(world_->launches, 1);
  // Reading and MMDS still work.
  EXPECT_EQ(get("/machine-config").status, 200);
  EXPECT_EQ(put("/mmds", {{"k", "v"}}).status, 204);
}

TEST_F(ApiRouterTest, PauseAndResume) {
  start();
  EXPECT_EQ(patch("/vm", {{"state", "Paused"}}).status, 204);
  EXPECT_EQ(state(), "Paused");
  EXPECT_EQ(patch("/vm", {{"state", "Paused"}}).status, 204);  // idempotent, as Firecracker
  EXPECT_EQ(patch("/vm", {{"state", "Resumed"}}).status, 204);
  EXPECT_EQ(state(), "Running");
}

// Post-boot requests are checked here, then carried to the machine (which the fake VM
// cannot do: its refusal comes back as the request's fault, with the resource's prefix).
TEST_F(ApiRouterTest, PostBootUpdatesAreCheckedThenReachTheVm) {
  std::string disk = temp_file("disk2", std::string(4096, '\0'));
  ASSERT_EQ(put("/drives/rootfs",
                {{"drive_id", "rootfs"}, {"path_on_host", disk}, {"is_root_device", true}})
                .status,
            204);
  ASSERT_EQ(put("/balloon", {{"amount_mib", 8}, {"deflate_on_oom", false}}).status, 204);
  start();
  expect_fault(patch("/drives/nope", {{"drive_id", "nope"}, {"path_on_host", disk}}),
               "No drive with id 'nope'");
  expect_fault(patch("/drives/rootfs", {{"drive_id", "other"}}), "does not match");
  expect_fault(patch("/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", "/nonexistent"}}),
               "Unable to open the backing file");
  expect_fault(patch("/network-interfaces/eth0", {{"iface_id", "eth0"}}), "No network interface");
  expect_fault(patch("/balloon", {{"amount_mib", 100000}}),
               "Amount of pages requested is too large");
  expect_fault(get("/balloon/statistics"), "Statistics for the balloon device are not enabled");
  expect_fault(patch("/balloon/statistics", {{"stats_polling_interval_s", 5}}),
               "Cannot enable/disable statistics after boot");
  expect_fault(call(Method::kPatch, "/balloon/hinting/start"), "Free page hinting was not enabled");
  expect_fault(get("/hotplug/memory"), "not configured");
  EXPECT_EQ(world_->calls, 0) << "refused requests never reach the VM";

  expect_fault(patch("/drives/rootfs", {{"drive_id", "rootfs"}, {"path_on_host", disk}}),
               "Drive config error: Unable to patch the block device: the fake VM has no machine");
  expect_fault(patch("/balloon", {{"amount_mib", 4}}),
               "Balloon update error: the fake VM has no machine");
  expect_fault(put("/actions", {{"action_type", "SendCtrlAltDel"}}),
               "Internal VMM error: the fake VM has no machine");
  EXPECT_EQ(world_->calls, 3);
  EXPECT_EQ(body_of(get("/vm/config"))["drives"][0]["path_on_host"], disk)
      << "a failed update changes nothing";

  expect_fault(
      put("/snapshot/create",
          {{"snapshot_path", "/tmp/s"}, {"mem_file_path", "/tmp/m"}, {"snapshot_type", "Diff"}}),
      "Diff snapshots are not allowed");
  expect_fault(put("/snapshot/create", {{"snapshot_path", "/tmp/s"}, {"mem_file_path", "/tmp/m"}}),
               "must be paused");
  EXPECT_EQ(world_->calls, 3);
  ASSERT_EQ(patch("/vm", {{"state", "Paused"}}).status, 204);
  expect_fault(put("/snapshot/create", {{"snapshot_path", "/tmp/s"}, {"mem_file_path", "/tmp/m"}}),
               "Create snapshot error: the fake VM has no machine");
  EXPECT_EQ(world_->calls, 4);
  expect_fault(put("/snapshot/create", {{"mem_file_path", "/tmp/m"}}), "snapshot_path");
  // FlushMetrics without a metrics file is a no-op, as in Firecracker.
  EXPECT_EQ(put("/actions", {{"action_type", "FlushMetrics"}}).status, 204);
}

TEST_F(ApiRouterTest, SnapshotLoadStartsTheVmFromTheSnapshotsConfig) {
  expect_fault(put("/snapshot/load", {{"snapshot_path", "/s"}}),
               "An error occurred when deserializing");
  world_->restore_error = "no such snapshot";
  auto failed = put("/snapshot/load", {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}});
  expect_fault(failed, "Load snapshot error: no such snapshot");
  EXPECT_TRUE(failed.deprecated);
  EXPECT_EQ(state(), "Not started");
  expect_fault(put("/snapshot/load", {{"snapshot_path", "/s"},
                                      {"mem_file_path", "/m"},
                                      {"vsock_override", {{"uds_path", 7}}}}),
               "uds_path");
  EXPECT_EQ(world_->restores, 0);

  EXPECT_EQ(put("/logger", {{"level", "Info"}}).status, 204);  // not a boot resource
  auto loaded = put("/snapshot/load",
                    {{"snapshot_path", "/s"},
                     {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/m"}}},
                     {"track_dirty_pages", true},
                     {"clock_realtime", true},
                     {"vsock_override", {{"uds_path", "/v"}}},
                     {"network_overrides", {{{"iface_id", "eth0"}, {"host_dev_name", "tap7"}}}}});
  ASSERT_EQ(loaded.status, 204) << loaded.body;
  EXPECT_FALSE(loaded.deprecated);
  EXPECT_EQ(world_->restores, 1);
  EXPECT_EQ(world_->launches, 0);
  EXPECT_EQ(world_->loaded.mem_backend.backend_path, "/m");
  ASSERT_EQ(world_->loaded.network_overrides.size(), 1u);
  EXPECT_EQ(world_->loaded.network_overrides[0].host_dev_name, "tap7");
  ASSERT_TRUE(world_->loaded.vsock_override.has_value());
  EXPECT_EQ(world_->loaded.vsock_override->uds_path, "/v");
  EXPECT_TRUE(world_->loaded.clock_realtime);
  EXPECT_EQ(state(), "Paused") << "without resume_vm the VM stays paused";
  auto cfg = body_of(get("/vm/config"));
  EXPECT_EQ(cfg["machine-config"]["vcpu_count"], 3);
  EXPECT_EQ(cfg["machine-config"]["track_dirty_pages"], true);
  EXPECT_EQ(cfg["boot-source"]["kernel_image_path"], "/from/the/snapshot");
  // Started now: pre-boot requests are refused, post-boot ones accepted.
  std::string post(kNotSupportedPostBoot);
  expect_fault(put("/snapshot/load", {{"snapshot_path", "/s"}, {"mem_file_path", "/m"}}), post);
  expect_fault(put("/machine-config", {{"vcpu_count", 1}, {"mem_size_mib", 128}}), post);
  EXPECT_EQ(patch("/vm", {{"state", "Resumed"}}).status, 204);
  EXPECT_EQ(state(), "Running");
}

TEST_F(ApiRouterTest, SnapshotLoadWithResumeRunsAndBootResourcesForbidIt) {
  auto loaded =
      put("/snapshot/load", {{"snapshot_path", "/s"},
                             {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/m"}}},
                             {"resume_vm", true}});
  ASSERT_EQ(loaded.status, 204) << loaded.body;
  EXPECT_EQ(state(), "Running");

  SetUp();  // a fresh controller
  configure_bootable();
  expect_fault(
      put("/snapshot/load", {{"snapshot_path", "/s"},
                             {"mem_backend", {{"backend_type", "File"}, {"backend_path", "/m"}}}}),
      "Loading a microVM snapshot not allowed after configuring boot-specific resources.");
  EXPECT_EQ(world_->restores, 0);
}

std::vector<json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(json::parse(line, nullptr, false));
  return lines;
}

TEST_F(ApiRouterTest, MetricsOpenOnceAndFlushAfterStart) {
  expect_fault(put("/metrics", {{"metrics_path", "/nonexistent/metrics"}}), "Metrics error");
  std::string path = temp_file("metrics", "");
  EXPECT_EQ(put("/metrics", {{"metrics_path", path}, {"emit_id", true}}).status, 204);
  expect_fault(put("/metrics", {{"metrics_path", path}}),
               "Reinitialization of metrics not allowed");
  start();
  // As Firecracker: a line at start, then one per FlushMetrics.
  EXPECT_EQ(put("/actions", {{"action_type", "FlushMetrics"}}).status, 204);
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& j : lines) {
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["id"], "test-vm");
    EXPECT_TRUE(j["utc_timestamp_ms"].is_number());
    for (const char* group : {"api_server", "get_api_requests", "put_api_requests",
                              "patch_api_requests", "latencies_us", "deprecated_api"}) {
      EXPECT_TRUE(j.contains(group)) << group;
    }
  }
  // Counters report what changed since the previous line.
  EXPECT_EQ(lines[0]["put_api_requests"]["metrics_count"], 3);
  EXPECT_EQ(lines[0]["put_api_requests"]["metrics_fails"], 2);
  EXPECT_EQ(lines[0]["put_api_requests"]["boot_source_count"], 1);
  EXPECT_EQ(lines[0]["put_api_requests"]["actions_count"], 0) << "InstanceStart counts after";
  EXPECT_EQ(lines[1]["put_api_requests"]["metrics_count"], 0);
  EXPECT_EQ(lines[1]["put_api_requests"]["actions_count"], 1);
  EXPECT_EQ(lines[1]["put_api_requests"]["actions_fails"], 0);
}

TEST(ApiMetricsTest, PeriodicLinesOnceStarted) {
  auto world = std::make_shared<FakeWorld>();
  auto options = fake_options(world);
  options.metrics_period = std::chrono::milliseconds(20);
  auto controller = VmmController::create(std::move(options));
  ASSERT_TRUE(controller.ok());
  std::string path = temp_file("periodic", "");
  config::VmConfig config;
  config.boot_source.kernel_image_path = temp_file("kernel");
  config.metrics = config::MetricsConfig{path, false, std::nullopt};
  ASSERT_TRUE((*controller)->configure(config).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_TRUE(read_lines(path).empty()) << "nothing before the VM starts";
  ASSERT_TRUE((*controller)->start().ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (read_lines(path).size() < 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(read_lines(path).size(), 3u);
}

TEST(ApiMetricsTest, RequestsCountByFamilyAndLinesCarryChanges) {
  ApiMetrics m;
  m.count_request(Method::kPut, "/drives/rootfs", 204, false);
  m.count_request(Method::kPut, "/drives/rootfs", 400, false);
  m.count_request(Method::kPatch, "/network-interfaces/eth0", 400, false);
  m.count_request(Method::kGet, "/", 200, false);
  m.count_request(Method::kGet, "/machine-config", 400, false);
  m.count_request(Method::kPut, "/mmds/config", 204, true);
  m.count_request(Method::kPut, "/nonsense", 400, false);
  m.store_latency("full_create_snapshot", std::chrono::microseconds(1234));
  json c = m.counters();
  EXPECT_EQ(c["put_api_requests"]["drive_count"], 2);
  EXPECT_EQ(c["put_api_requests"]["drive_fails"], 1);
  EXPECT_EQ(c["put_api_requests"]["mmds_count"], 1);
  EXPECT_EQ(c["patch_api_requests"]["network_count"], 1);
  EXPECT_EQ(c["patch_api_requests"]["network_fails"], 1);
  EXPECT_EQ(c["get_api_requests"]["instance_info_count"], 1);
  EXPECT_EQ(c["get_api_requests"]["machine_cfg_count"], 1);
  EXPECT_FALSE(c["get_api_requests"].contains("machine_cfg_fails"));
  EXPECT_EQ(c["deprecated_api"]["deprecated_http_api_calls"], 1);
  EXPECT_EQ(m.stores()["latencies_us"]["full_create_snapshot"], 1234);

  vmm::Machine::Counters mc;
  mc.drives.push_back({"rootfs", 2, 3, 1024, 1536, 1, 0, 0, 0, 1, 0});
  mc.drives.push_back({"data", 5, 0, 4096, 0, 0, 1, 0, 0, 0, 0});
  mc.nics.push_back({"eth0", 7, 700, 0, 0, 0, 0, 4, 400, 0, 0, 0, 0, 0, 0});
  mc.vcpu_exits = 99;
  json dev = machine_metrics(mc);
  EXPECT_EQ(dev["block_rootfs"]["read_count"], 2);
  EXPECT_EQ(dev["block_data"]["execute_fails"], 1);
  EXPECT_EQ(dev["block"]["read_count"], 7) << "the aggregate sums the drives";
  EXPECT_EQ(dev["block"]["read_bytes"], 5120);
  EXPECT_EQ(dev["net_eth0"]["rx_packets_count"], 7);
  EXPECT_EQ(dev["net"]["tx_bytes_count"], 400);
  EXPECT_EQ(dev["vcpu"]["exit_count"], 99);
  EXPECT_TRUE(dev.contains("balloon") && dev.contains("i8042"));

  std::string path = temp_file("lines", "");
  MetricsFile file(UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)));
  json counters = m.counters();
  counters.update(dev);
  ASSERT_TRUE(file.write_line({{"utc_timestamp_ms", 1}}, counters, m.stores()).ok());
  m.count_request(Method::kPut, "/drives/rootfs", 204, false);
  mc.drives[0].reads = 10;
  counters = m.counters();
  counters.update(machine_metrics(mc));
  ASSERT_TRUE(file.write_line({{"utc_timestamp_ms", 2}}, counters, m.stores()).ok());
  // A line without the machine's groups (it did not answer), then one with them again.
  ASSERT_TRUE(file.write_line({{"utc_timestamp_ms", 3}}, m.counters(), m.stores()).ok());
  mc.drives[0].reads = 11;
  counters = m.counters();
  counters.update(machine_metrics(mc));
  ASSERT_TRUE(file.write_line({{"utc_timestamp_ms", 4}}, counters, m.stores()).ok());
  auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["put_api_requests"]["drive_count"], 2);
  EXPECT_EQ(lines[1]["put_api_requests"]["drive_count"], 1);
  EXPECT_EQ(lines[0]["block_rootfs"]["read_count"], 2);
  EXPECT_EQ(lines[1]["block_rootfs"]["read_count"], 8);
  EXPECT_FALSE(lines[2].contains("block_rootfs"));
  EXPECT_EQ(lines[3]["block_rootfs"]["read_count"], 1) << "changes since the last report";
  EXPECT_EQ(lines[1]["latencies_us"]["full_create_snapshot"], 1234) << "stored values repeat";
}

TEST_F(ApiRouterTest, GuestExitIsReportedAndEndsPostBootActions) {
  start();
  pollfd pfd{controller_->exit_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&pfd, 1, 0), 0);
  EXPECT_FALSE(controller_->outcome().has_value());
  controller_->stop();
  EXPECT_TRUE(world_->stopped);
  EXPECT_EQ(::poll(&pfd, 1, 0), 1);
  auto outcome = controller_->outcome();
  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(outcome->ok());
  EXPECT_EQ((*outcome)->kind, vmm::RunOutcome::Kind::Shutdown);
  EXPECT_EQ(state(), "Stopped");
  expect_fault(patch("/vm", {{"state", "Paused"}}), "the microVM has stopped");
}

TEST_F(ApiRouterTest, ConfigureReplacesTheWholeConfigAfterValidation) {
  config::VmConfig bad;
  bad.boot_source.kernel_image_path = "/nonexistent/kernel";
  EXPECT_FALSE(controller_->configure(bad).ok());
  config::VmConfig good;
  good.boot_source.kernel_image_path = kernel_;
  good.machine_config.mem_size_mib = 64;
  ASSERT_TRUE(controller_->configure(good).ok());
  EXPECT_EQ(body_of(get("/machine-config"))["mem_size_mib"], 64);
  ASSERT_TRUE(controller_->start().ok());
  EXPECT_EQ(world_->launched, good);
  EXPECT_FALSE(controller_->configure(good).ok());
}

// Random methods, paths and mutated bodies: every request gets a well-formed answer.
TEST_F(ApiRouterTest, RandomRequestsOnlyEverGetAnswers) {
  std::mt19937 rng(20240611);
  std::vector<std::string> targets = {"/", "/x", "//", "/drives/", "/drives/a/b", "/mmds/config/x"};
  for (const auto& r : router_->routes()) {
    std::string t = r.pattern;
    if (auto open = t.find('{'); open != std::string::npos) t = t.substr(0, open) + "a1";
    targets.push_back(t);
  }
  const std::vector<std::string> seeds = {
      R"({"action_type": "InstanceStart"})",
      json{{"kernel_image_path", kernel_}, {"boot_args", "console=ttyS0"}}.dump(),
      R"({"vcpu_count": 2, "mem_size_mib": 64, "smt": false, "huge_pages": "None"})",
      R"({"drive_id": "a1", "path_on_host": "/dev/null", "is_root_device": false,
          "rate_limiter": {"bandwidth": {"size": 1, "refill_time": 1}}})",
      R"({"iface_id": "a1", "host_dev_name": "tap1", "guest_mac": "06:00:00:00:00:01"})",
      R"({"state": "Paused"})",
      R"({"network_interfaces": ["a1"], "version": "V2", "ipv4_address": "169.254.169.254"})",
      R"({"a": {"b": [1, 2, {"c": null}]}, "d": "e"})",
      R"({"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/u"}})",
      R"({"cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0", "flags": 0,
          "modifiers": [{"register": "eax", "bitmap": "0bxxxxxxxxxxxxxxxxxxxxxxxxxxxx0001"}]}]})",
  };
  const std::string tokens[] = {
      "{",    "}",       "[",   "]", ",", ":", "\"", "null", "-1", "1e999", "18446744073709551616",
      "true", "\\u0000", "\xff"};
  auto mutate = [&](std::string s) {
    int edits = std::uniform_int_distribution<int>(0, 4)(rng);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      size_t pos = std::uniform_int_distribution<size_t>(0, s.size() - 1)(rng);
      switch (rng() % 4) {
        case 0:
          s[pos] = static_cast<char>(rng());
          break;
        case 1:
          s.erase(pos, rng() % 8);
          break;
        case 2:
          s.insert(pos, tokens[rng() % std::size(tokens)]);
          break;
        default:
          s.resize(pos);
      }
    }
    return s;
  };
  const Method methods[] = {Method::kGet, Method::kPut, Method::kPatch, Method::kOther};
  for (int i = 0; i < 5000; ++i) {
    Method m = methods[rng() % 4];
    std::string target = targets[rng() % targets.size()];
    std::string body = rng() % 5 == 0 ? "" : mutate(seeds[rng() % seeds.size()]);
    auto r = call(m, target, body);
    ASSERT_TRUE(r.status == 200 || r.status == 204 || r.status == 400 || r.status == 413)
        << r.status << " for " << to_string(m) << " " << target << " " << body;
    if (r.status >= 400) {
      ASSERT_NE(fault_of(r), "<no fault>") << r.body;
    } else if (r.status == 200) {
      ASSERT_FALSE(body_of(r).is_discarded()) << r.body;
    }
  }
}

}  // namespace
}  // namespace ignition::api
