// The configuration model: Firecracker-shaped JSON in, validated structs out, and back.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/paths.hpp"
#include "vmm/config/instance_action.hpp"
#include "vmm/config/json_fields.hpp"
#include "vmm/config/snapshot.hpp"
#include "vmm/config/vm_config.hpp"
#include "vmm/config/vm_state.hpp"

namespace ignition::config {
namespace {

using nlohmann::json;

template <typename T>
std::string error_of(const Result<T>& r) {
  return r.ok() ? std::string("<no error>") : r.error().message;
}

// Expects `r` to fail with a message containing every one of `parts`.
template <typename T>
void expect_error(const Result<T>& r, std::initializer_list<std::string_view> parts) {
  ASSERT_FALSE(r.ok()) << "expected an error containing '" << *parts.begin() << "'";
  for (std::string_view p : parts) {
    EXPECT_NE(r.error().message.find(p), std::string::npos)
        << "message '" << r.error().message << "' lacks '" << p << "'";
  }
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << "not one line";
}

// A minimal valid document to mutate in error tests.
json minimal() {
  return json{{"boot-source", {{"kernel_image_path", "vmlinux"}}},
              {"machine-config", {{"vcpu_count", 2}, {"mem_size_mib", 256}}}};
}

// Every resource the config file can hold, with non-default values.
json full_config() {
  return R"({
    "boot-source": {"kernel_image_path": "vmlinux.bin", "initrd_path": "initrd.img",
                    "boot_args": "console=ttyS0 reboot=k panic=1"},
    "machine-config": {"vcpu_count": 4, "mem_size_mib": 1024, "smt": true,
                       "track_dirty_pages": true, "huge_pages": "2M", "cpu_template": "T2S"},
    "drives": [
      {"drive_id": "rootfs", "path_on_host": "rootfs.ext4", "is_root_device": true,
       "partuuid": "0eaa91a0-01", "is_read_only": true, "cache_type": "Writeback",
       "io_engine": "Async",
       "rate_limiter": {"bandwidth": {"size": 1048576, "one_time_burst": 4096, "refill_time": 100},
                        "ops": {"size": 1000, "refill_time": 1000}}},
      {"drive_id": "vhost_1", "is_root_device": false, "socket": "/run/vhost.sock"}
    ],
    "network-interfaces": [
      {"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:AC:10:00:02",
       "mtu": 1500, "rx_rate_limiter": {"ops": {"size": 10, "refill_time": 5}}},
      {"iface_id": "eth1", "host_dev_name": "tap1"}
    ],
    "vsock": {"guest_cid": 3, "uds_path": "/tmp/v.sock"},
    "entropy": {"rate_limiter": {"bandwidth": {"size": 100, "refill_time": 10}}},
    "balloon": {"amount_mib": 64, "deflate_on_oom": true, "stats_polling_interval_s": 5,
                "free_page_hinting": true, "free_page_reporting": false},
    "logger": {"log_path": "/tmp/fc.log", "level": "debug", "show_level": true,
               "show_log_origin": false, "module": "api_server"},
    "metrics": {"metrics_path": "/tmp/metrics.fifo", "emit_id": true,
                "properties": {"team": "vmm"}},
    "mmds-config": {"version": "V2", "network_interfaces": ["eth0"],
                    "ipv4_address": "169.254.170.2", "imds_compat": true},
    "cpu-config": {
      "kvm_capabilities": ["171", "!172"],
      "cpuid_modifiers": [{"leaf": "0x1", "subleaf": "0b0", "flags": 0,
        "modifiers": [{"register": "ecx", "bitmap": "0bx00100xxxxx1xxxxxxxxxxxxxxxxxxxx"}]}],
      "msr_modifiers": [{"addr": "0x10a", "bitmap": "0b0000000000000000_0000000000000000_0000000000000000_0000000000000001"}]
    },
    "serial": {"serial_out_path": "/tmp/serial.out",
               "rate_limiter": {"size": 4096, "refill_time": 100}},
    "pmem": [{"id": "pm0", "path_on_host": "data.img", "read_only": true}],
    "memory-hotplug": {"total_size_mib": 1024, "block_size_mib": 2, "slot_size_mib": 128}
  })"_json;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ign-config-XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---- whole documents ----

TEST(VmConfig, FullConfigParsesWithTheGivenValues) {
  auto r = parse_vm_config(full_config());
  ASSERT_TRUE(r.ok()) << error_of(r);
  const VmConfig& c = *r;
  EXPECT_EQ(c.machine_config.vcpu_count, 4u);
  EXPECT_EQ(c.machine_config.mem_size_mib, 1024u);
  EXPECT_TRUE(c.machine_config.smt);
  EXPECT_EQ(c.machine_config.huge_pages, "2M");
  EXPECT_EQ(c.machine_config.cpu_template, "T2S");
  EXPECT_EQ(c.boot_source.initrd_path, "initrd.img");
  ASSERT_EQ(c.drives.size(), 2u);
  EXPECT_EQ(c.drives[0].cache_type, CacheType::kWriteback);
  EXPECT_EQ(c.drives[0].io_engine, IoEngine::kAsync);
  EXPECT_TRUE(c.drives[0].read_only());
  ASSERT_TRUE(c.drives[0].rate_limiter && c.drives[0].rate_limiter->bandwidth);
  EXPECT_EQ(c.drives[0].rate_limiter->bandwidth->one_time_burst, 4096u);
  EXPECT_FALSE(c.drives[0].rate_limiter->ops->one_time_burst.has_value());
  EXPECT_TRUE(c.drives[1].is_vhost_user());
  EXPECT_FALSE(c.drives[1].is_read_only.has_value());
  ASSERT_EQ(c.network_interfaces.size(), 2u);
  EXPECT_EQ(c.network_interfaces[0].guest_mac->bytes,
            (std::array<uint8_t, 6>{0x06, 0x00, 0xac, 0x10, 0x00, 0x02}));
  EXPECT_EQ(c.network_interfaces[0].mtu, 1500);
  EXPECT_EQ(c.vsock->guest_cid, 3u);
  EXPECT_EQ(c.balloon->stats_polling_interval_s, 5);
  EXPECT_EQ(c.logger->level, LogLevel::kDebug);
  EXPECT_EQ(c.metrics->properties->at("team"), "vmm");
  EXPECT_EQ(c.mmds_config->version, MmdsVersion::kV2);
  EXPECT_EQ(c.mmds_config->ipv4_address.to_string(), "169.254.170.2");
  ASSERT_TRUE(c.cpu_config.has_value());
  EXPECT_EQ(c.cpu_config->kvm_capabilities[1], (KvmCapabilityModifier{172, true}));
  const auto& ecx = c.cpu_config->cpuid_modifiers[0].modifiers[0];
  EXPECT_EQ(ecx.reg, CpuidRegister::kEcx);
  // Bits 30..26 forced to 00100, bit 20 forced to 1, the rest untouched.
  EXPECT_EQ(ecx.bitmap.value, (1u << 28) | (1u << 20));
  EXPECT_EQ(ecx.bitmap.filter, (0x1fu << 26) | (1u << 20));
  EXPECT_EQ(c.cpu_config->msr_modifiers[0].addr, 0x10au);
  EXPECT_EQ(c.cpu_config->msr_modifiers[0].bitmap.filter, ~uint64_t{0});
  EXPECT_EQ(c.cpu_config->msr_modifiers[0].bitmap.value, 1u);
  EXPECT_EQ(c.serial->rate_limiter->size, 4096u);
  EXPECT_TRUE(c.pmem[0].read_only);
  EXPECT_EQ(c.memory_hotplug->total_size_mib, 1024u);
}

TEST(VmConfig, FullConfigRoundTripsThroughJson) {
  auto first = parse_vm_config(full_config());
  ASSERT_TRUE(first.ok()) << error_of(first);
  json out = to_json(*first);
  auto second = parse_vm_config(out);
  ASSERT_TRUE(second.ok()) << error_of(second) << "\n" << out.dump(2);
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(out, to_json(*second));
  // The GET shape spells values as Firecracker does.
  EXPECT_EQ(out["network-interfaces"][0]["guest_mac"], "06:00:ac:10:00:02");
  EXPECT_EQ(out["logger"]["level"], "Debug");
  EXPECT_EQ(out["cpu-config"]["cpuid_modifiers"][0]["leaf"], "0x1");
  EXPECT_EQ(out["cpu-config"]["cpuid_modifiers"][0]["modifiers"][0]["bitmap"],
            "0bx00100xxxxx1xxxxxxxxxxxxxxxxxxxx");
}

TEST(VmConfig, FirecrackerFrameworkConfigParses) {
  // Firecracker's tests/framework/vm_config.json: the GET /vm/config shape, nulls included.
  json fc = R"({
    "boot-source": {"kernel_image_path": "vmlinux.bin",
                    "boot_args": "console=ttyS0 reboot=k panic=1", "initrd_path": null},
    "drives": [{"drive_id": "rootfs", "partuuid": null, "is_root_device": true,
                "cache_type": "Unsafe", "is_read_only": false,
                "path_on_host": "bionic.rootfs.ext4", "io_engine": "Sync",
                "rate_limiter": null, "socket": null}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "smt": false,
                       "track_dirty_pages": false, "huge_pages": "None"},
    "cpu-config": null, "balloon": null, "network-interfaces": [], "vsock": null,
    "logger": null, "metrics": null, "mmds-config": null, "entropy": null,
    "pmem": [], "memory-hotplug": null
  })"_json;
  auto r = parse_vm_config(fc);
  ASSERT_TRUE(r.ok()) << error_of(r);
  EXPECT_EQ(r->machine_config.vcpu_count, 2u);
  EXPECT_EQ(r->machine_config.mem_size_mib, 1024u);
  EXPECT_EQ(r->boot_source.kernel_image_path, "vmlinux.bin");
  EXPECT_FALSE(r->boot_source.initrd_path.has_value());
  ASSERT_EQ(r->drives.size(), 1u);
  EXPECT_TRUE(r->drives[0].is_root_device);
  EXPECT_FALSE(r->balloon.has_value());
  // Our GET /vm/config output for it is exactly Firecracker's document.
  EXPECT_EQ(to_json(*r), fc);
}

TEST(VmConfig, FirecrackerMmdsAndNetworkExampleParses) {
  // tests/framework/vm_config_with_mmdsv2.json (drive without socket/partuuid keys).
  json fc = R"({
    "boot-source": {"kernel_image_path": "vmlinux.bin", "boot_args": "console=ttyS0"},
    "drives": [{"drive_id": "rootfs", "path_on_host": "bionic.rootfs.ext4",
                "is_root_device": true, "is_read_only": false}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024, "cpu_template": "C3"},
    "balloon": null,
    "network-interfaces": [{"iface_id": "1", "host_dev_name": "tap0",
                            "guest_mac": "06:00:c0:a8:00:02",
                            "rx_rate_limiter": null, "tx_rate_limiter": null}],
    "mmds-config": {"network_interfaces": ["1"], "ipv4_address": "169.254.169.250",
                    "version": "V2", "imds_compat": true}
  })"_json;
  auto r = parse_vm_config(fc);
  ASSERT_TRUE(r.ok()) << error_of(r);
  EXPECT_EQ(r->machine_config.cpu_template, "C3");
  EXPECT_EQ(r->mmds_config->network_interfaces, std::vector<std::string>{"1"});
  EXPECT_EQ(r->drives[0].engine(), IoEngine::kSync);
}

TEST(VmConfig, MachineConfigDefaultsWhenAbsent) {
  auto r = parse_vm_config(json{{"boot-source", {{"kernel_image_path", "k"}}}});
  ASSERT_TRUE(r.ok()) << error_of(r);
  EXPECT_EQ(r->machine_config, MachineConfig{});
  EXPECT_FALSE(r->boot_source.boot_args.has_value());
}

TEST(VmConfig, ExampleFileInDocsLoads) {
  auto r = load_vm_config_file(test::source_dir() + "/docs/examples/vm-config.json");
  ASSERT_TRUE(r.ok()) << error_of(r);
  EXPECT_EQ(r->boot_source.kernel_image_path, "build/guest/ignition-test.elf");
  EXPECT_EQ(r->boot_source.boot_args, "console=ttyS0 ign.tests=boot,cmdline");
  EXPECT_EQ(r->machine_config.vcpu_count, 2u);
  EXPECT_EQ(r->machine_config.mem_size_mib, 128u);
}

// ---- document-level errors ----

TEST(VmConfig, MissingBootSourceIsAnError) {
  json j = minimal();
  j.erase("boot-source");
  expect_error(parse_vm_config(j), {"missing required field 'boot-source'"});
  j["boot-source"] = nullptr;
  expect_error(parse_vm_config(j), {"boot-source"});
}

TEST(VmConfig, UnknownTopLevelKeyIsNamed) {
  json j = minimal();
  j["machine_config"] = json::object();
  expect_error(parse_vm_config(j), {"unknown field 'machine_config'", "machine-config"});
}

TEST(VmConfig, DocumentMustBeAnObject) {
  expect_error(parse_vm_config(json::array()), {"expected a JSON object", "array"});
}

TEST(VmConfig, ErrorsNameTheResourceAndIndex) {
  json j = minimal();
  j["drives"] = json::array({{{"drive_id", "a"}, {"path_on_host", "x"}, {"is_root_device", false}},
                             {{"drive_id", "b"}, {"path_on_host", "y"}}});
  expect_error(parse_vm_config(j), {"drives[1]", "missing required field 'is_root_device'"});
  j = minimal();
  j["network-interfaces"] = json::array({{{"iface_id", "eth0"},
                                          {"host_dev_name", "tap0"},
                                          {"rx_rate_limiter", {{"bandwidth", {{"size", 1}}}}}}});
  expect_error(parse_vm_config(j), {"network-interfaces[0]: rx_rate_limiter: bandwidth:",
                                    "missing required field 'refill_time'"});
}

TEST(VmConfig, CrossResourceChecks) {
  auto drive = [](const char* id, bool root) {
    return json{{"drive_id", id}, {"path_on_host", "p"}, {"is_root_device", root}};
  };
  json j = minimal();
  j["drives"] = json::array({drive("a", true), drive("b", true)});
  expect_error(parse_vm_config(j), {"only one root device", "'a'", "'b'"});

  j["drives"] = json::array({drive("a", false), drive("a", false)});
  expect_error(parse_vm_config(j), {"drive_id 'a' is used more than once"});

  j = minimal();
  j["drives"] = json::array({drive("a", true)});
  j["pmem"] = json::array({{{"id", "p"}, {"path_on_host", "x"}, {"root_device", true}}});
  expect_error(parse_vm_config(j), {"only one root device", "pmem 'p'"});

  auto nic = [](const char* id, const char* tap, const char* mac) {
    json n = {{"iface_id", id}, {"host_dev_name", tap}};
    if (mac) n["guest_mac"] = mac;
    return n;
  };
  j = minimal();
  j["network-interfaces"] =
      json::array({nic("eth0", "tap0", nullptr), nic("eth0", "tap1", nullptr)});
  expect_error(parse_vm_config(j), {"iface_id 'eth0' is used more than once"});
  j["network-interfaces"] = json::array(
      {nic("eth0", "tap0", "06:00:00:00:00:01"), nic("eth1", "tap1", "06:00:00:00:00:01")});
  expect_error(parse_vm_config(j), {"guest_mac '06:00:00:00:00:01' is used more than once"});
  j["network-interfaces"] =
      json::array({nic("eth0", "tap0", nullptr), nic("eth1", "tap0", nullptr)});
  expect_error(parse_vm_config(j), {"host_dev_name 'tap0'"});

  j = minimal();
  j["network-interfaces"] = json::array({nic("eth0", "tap0", nullptr)});
  j["mmds-config"] = {{"network_interfaces", {"eth9"}}};
  expect_error(parse_vm_config(j), {"mmds-config", "'eth9'"});

  j = minimal();
  j["balloon"] = {{"amount_mib", 512}, {"deflate_on_oom", false}};
  expect_error(parse_vm_config(j), {"balloon", "amount_mib (512)", "mem_size_mib (256)"});
}

// ---- files ----

TEST(VmConfigFile, MissingFileIsAnError) {
  TempDir dir;
  expect_error(load_vm_config_file(dir.path() + "/nope.json"),
               {"nope.json", "No such file or directory"});
}

TEST(VmConfigFile, MalformedJsonReportsLineAndColumn) {
  TempDir dir;
  std::string p = dir.write("bad.json", "{\n  \"boot-source\": {\n    \"kernel_image_path\": ,\n");
  auto r = load_vm_config_file(p);
  expect_error(r, {"bad.json", "malformed JSON", "line 3, column"});
}

TEST(VmConfigFile, DuplicateKeyIsAnError) {
  TempDir dir;
  std::string p = dir.write(
      "dup.json", R"({"boot-source": {"kernel_image_path": "a", "kernel_image_path": "b"}})");
  expect_error(load_vm_config_file(p), {"dup.json", "duplicate field 'kernel_image_path'"});
}

TEST(VmConfigFile, SchemaErrorsArePrefixedWithThePath) {
  TempDir dir;
  std::string p = dir.write(
      "vm.json",
      R"({"boot-source": {"kernel_image_path": "k"}, "machine-config": {"vcpu_count": 64, "mem_size_mib": 128}})");
  expect_error(load_vm_config_file(p), {"vm.json: machine-config:", "vcpu_count", "64"});
}

TEST(VmConfigFile, CpuConfigPathIsRead) {
  TempDir dir;
  std::string tmpl = dir.write("tmpl.json", R"({"kvm_capabilities": ["!5"]})");
  json doc = minimal();
  doc["cpu-config"] = tmpl;
  auto parsed = parse_vm_config(doc);
  ASSERT_TRUE(parsed.ok()) << error_of(parsed);
  EXPECT_EQ(parsed->cpu_config_path, tmpl);
  EXPECT_FALSE(parsed->cpu_config.has_value());

  auto loaded = load_vm_config_file(dir.write("vm.json", doc.dump()));
  ASSERT_TRUE(loaded.ok()) << error_of(loaded);
  ASSERT_TRUE(loaded->cpu_config.has_value());
  EXPECT_EQ(loaded->cpu_config->kvm_capabilities,
            (std::vector<KvmCapabilityModifier>{KvmCapabilityModifier{5, true}}));
  EXPECT_FALSE(loaded->cpu_config_path.has_value());

  doc["cpu-config"] = dir.path() + "/missing.json";
  expect_error(load_vm_config_file(dir.write("vm2.json", doc.dump())),
               {"cpu-config", "missing.json"});
}

TEST(ParseJsonText, EmptyInputAndTrailingGarbage) {
  expect_error(parse_json_text(""), {"malformed JSON"});
  expect_error(parse_json_text("{} x"), {"malformed JSON", "line 1"});
  auto ok = parse_json_text(R"({"a": {"b": 1}, "c": {"b": 2}})");  // same key, different objects
  EXPECT_TRUE(ok.ok()) << error_of(ok);
}

// ---- machine-config ----

TEST(MachineConfig, RangeChecks) {
  auto mc = [](json fields) { return parse_machine_config(fields); };
  expect_error(mc({{"vcpu_count", 0}, {"mem_size_mib", 128}}), {"vcpu_count", "between 1 and 32"});
  expect_error(mc({{"vcpu_count", 33}, {"mem_size_mib", 128}}), {"vcpu_count", "33"});
  expect_error(mc({{"vcpu_count", 1}, {"mem_size_mib", 0}}), {"mem_size_mib", "at least 1"});
  expect_error(mc({{"vcpu_count", 3}, {"mem_size_mib", 128}, {"smt", true}}),
               {"1 or an even number", "smt"});
  EXPECT_TRUE(mc({{"vcpu_count", 1}, {"mem_size_mib", 128}, {"smt", true}}).ok());
  EXPECT_TRUE(mc({{"vcpu_count", 3}, {"mem_size_mib", 128}}).ok());
  expect_error(mc({{"vcpu_count", 1}, {"mem_size_mib", 129}, {"huge_pages", "2M"}}),
               {"mem_size_mib", "multiple of 2", "129"});
  expect_error(mc({{"vcpu_count", 1}, {"mem_size_mib", 128}, {"huge_pages", "1G"}}),
               {"huge_pages", "None, Transparent, 2M", "'1G'"});
  expect_error(mc({{"vcpu_count", 1}, {"mem_size_mib", 128}, {"cpu_template", "V1N1"}}),
               {"cpu_template", "'V1N1'"});
}

TEST(MachineConfig, TypesAndRequiredFields) {
  expect_error(parse_machine_config({{"vcpu_count", "2"}, {"mem_size_mib", 128}}),
               {"field 'vcpu_count' must be an unsigned integer, got string"});
  expect_error(parse_machine_config({{"vcpu_count", -1}, {"mem_size_mib", 128}}),
               {"vcpu_count", "non-negative", "-1"});
  expect_error(parse_machine_config({{"vcpu_count", 2.5}, {"mem_size_mib", 128}}),
               {"vcpu_count", "unsigned integer", "2.5"});
  expect_error(parse_machine_config({{"vcpu_count", 2}, {"mem_size_mib", 128}, {"smt", 1}}),
               {"field 'smt' must be a boolean, got number 1"});
  expect_error(parse_machine_config({{"mem_size_mib", 128}}),
               {"missing required field 'vcpu_count'"});
  expect_error(parse_machine_config({{"vcpu_count", 1}}),
               {"missing required field 'mem_size_mib'"});
  expect_error(parse_machine_config({{"vcpu_count", 1}, {"mem_size_mib", 1}, {"vcpus", 1}}),
               {"unknown field 'vcpus'"});
  expect_error(parse_machine_config({{"vcpu_count", 5000000000}, {"mem_size_mib", 1}}),
               {"vcpu_count", "out of range"});
}

TEST(MachineConfig, PatchChangesOnlyGivenFields) {
  MachineConfig base;
  base.vcpu_count = 2;
  base.mem_size_mib = 512;
  base.cpu_template = "T2";
  auto u = parse_machine_config_update({{"mem_size_mib", 1024}});
  ASSERT_TRUE(u.ok()) << error_of(u);
  auto c = apply_machine_config_update(base, *u);
  ASSERT_TRUE(c.ok()) << error_of(c);
  EXPECT_EQ(c->vcpu_count, 2u);
  EXPECT_EQ(c->mem_size_mib, 1024u);
  EXPECT_EQ(c->cpu_template, "T2");

  auto clear = parse_machine_config_update({{"cpu_template", "None"}});
  ASSERT_TRUE(clear.ok());
  EXPECT_FALSE(apply_machine_config_update(base, *clear)->cpu_template.has_value());

  // The merged result is validated: smt on with the existing odd count fails.
  base.vcpu_count = 3;
  auto smt = parse_machine_config_update({{"smt", true}});
  ASSERT_TRUE(smt.ok());
  expect_error(apply_machine_config_update(base, *smt), {"1 or an even number"});

  expect_error(parse_machine_config_update(json::object()), {"empty update"});
  expect_error(parse_machine_config_update({{"foo", 1}}), {"unknown field 'foo'"});
}

TEST(MachineConfig, GetShapeOmitsAbsentTemplate) {
  json j = to_json(MachineConfig{});
  EXPECT_EQ(j, json({{"vcpu_count", 1},
                     {"mem_size_mib", 128},
                     {"smt", false},
                     {"track_dirty_pages", false},
                     {"huge_pages", "None"}}));
}

// ---- boot-source ----

TEST(BootSource, Validation) {
  expect_error(parse_boot_source(json::object()), {"missing required field 'kernel_image_path'"});
  expect_error(parse_boot_source({{"kernel_image_path", ""}}), {"kernel_image_path", "empty"});
  expect_error(parse_boot_source({{"kernel_image_path", 5}}),
               {"kernel_image_path", "must be a string, got number"});
  expect_error(parse_boot_source({{"kernel_image_path", "k"}, {"boot_args", "a\nb"}}),
               {"boot_args", "non-printable"});
  expect_error(
      parse_boot_source({{"kernel_image_path", "k"}, {"boot_args", std::string(70000, 'a')}}),
      {"boot_args", "too long"});
  expect_error(parse_boot_source({{"kernel_image_path", "k"}, {"kernel", "k"}}),
               {"unknown field 'kernel'"});
}

// ---- drives ----

TEST(Drive, Validation) {
  json base = {{"drive_id", "rootfs"}, {"path_on_host", "r.ext4"}, {"is_root_device", true}};
  auto with = [&](const char* key, json v) {
    json j = base;
    j[key] = std::move(v);
    return parse_drive(j);
  };
  expect_error(with("drive_id", "root-fs"), {"drive_id", "'root-fs'", "letters, digits and '_'"});
  expect_error(with("drive_id", ""), {"drive_id", "empty"});
  expect_error(with("cache_type", "None"), {"cache_type", "Unsafe, Writeback", "'None'"});
  expect_error(with("io_engine", "Uring"), {"io_engine", "Sync, Async"});
  expect_error(with("is_read_only", "yes"), {"is_read_only", "boolean"});
  expect_error(with("socket", "/s"), {"vhost-user", "path_on_host"});
  expect_error(with("rate_limiter", {{"bandwidth", {{"size", 1}, {"refill_time", 1}, {"x", 1}}}}),
               {"rate_limiter: bandwidth: unknown field 'x'"});
  json neither = base;
  neither.erase("path_on_host");
  expect_error(parse_drive(neither), {"missing required field 'path_on_host'", "socket"});

  auto ok = parse_drive(base);
  ASSERT_TRUE(ok.ok()) << error_of(ok);
  // virtio-block defaults are resolved, so GET shows them as Firecracker does.
  EXPECT_EQ(to_json(*ok)["is_read_only"], false);
  EXPECT_EQ(to_json(*ok)["io_engine"], "Sync");
  EXPECT_EQ(to_json(*ok)["cache_type"], "Unsafe");
}

TEST(Drive, PartialDrive) {
  auto p = parse_partial_drive({{"drive_id", "scratch"}, {"path_on_host", "/new.img"}});
  ASSERT_TRUE(p.ok()) << error_of(p);
  EXPECT_EQ(p->path_on_host, "/new.img");
  EXPECT_FALSE(p->rate_limiter.has_value());
  expect_error(parse_partial_drive({{"drive_id", "a"}, {"is_read_only", true}}),
               {"unknown field 'is_read_only'"});
  expect_error(parse_partial_drive({{"path_on_host", "x"}}), {"missing required field 'drive_id'"});
}

// ---- network ----

TEST(NetworkInterface, MacAddressFormat) {
  EXPECT_TRUE(MacAddress::parse("aa:BB:cc:00:11:22").ok());
  for (const char* bad : {"aa:bb:cc:00:11", "aa:bb:cc:00:11:22:33", "aa-bb-cc-00-11-22",
                          "aa:bb:cc:00:11:2g", "a:bb:cc:00:11:222", ""}) {
    expect_error(MacAddress::parse(bad), {"invalid MAC address"});
  }
  expect_error(parse_network_interface(
                   {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}, {"guest_mac", "zz"}}),
               {"guest_mac", "invalid MAC address 'zz'"});
}

TEST(NetworkInterface, Validation) {
  json base = {{"iface_id", "eth0"}, {"host_dev_name", "tap0"}};
  auto with = [&](const char* key, json v) {
    json j = base;
    j[key] = std::move(v);
    return parse_network_interface(j);
  };
  expect_error(with("iface_id", "eth 0"), {"iface_id", "'eth 0'"});
  expect_error(with("host_dev_name", "a-very-long-tap-name"), {"host_dev_name", "too long"});
  expect_error(with("mtu", 67), {"mtu", "between 68 and 65535"});
  expect_error(with("mtu", 65536), {"mtu", "out of range"});
  expect_error(with("guest_mac", 12), {"guest_mac", "must be a string"});
  json no_tap = base;
  no_tap.erase("host_dev_name");
  expect_error(parse_network_interface(no_tap), {"missing required field 'host_dev_name'"});

  auto p = parse_partial_network_interface(
      {{"iface_id", "eth0"}, {"tx_rate_limiter", {{"ops", {{"size", 5}, {"refill_time", 7}}}}}});
  ASSERT_TRUE(p.ok()) << error_of(p);
  EXPECT_EQ(p->tx_rate_limiter->ops->refill_time, 7u);
  expect_error(parse_partial_network_interface({{"iface_id", "eth0"}, {"host_dev_name", "t"}}),
               {"unknown field 'host_dev_name'"});
}

// ---- small devices ----

TEST(Vsock, Validation) {
  expect_error(parse_vsock({{"guest_cid", 2}, {"uds_path", "/v"}}),
               {"guest_cid", "at least 3", "got 2"});
  expect_error(parse_vsock({{"guest_cid", 4294967296}, {"uds_path", "/v"}}),
               {"guest_cid", "out of range"});
  expect_error(parse_vsock({{"guest_cid", 3}}), {"missing required field 'uds_path'"});
  expect_error(parse_vsock({{"guest_cid", 3}, {"uds_path", std::string(200, 'a')}}),
               {"uds_path", "too long"});
  auto v = parse_vsock({{"guest_cid", 3}, {"uds_path", "/v"}, {"vsock_id", "old"}});
  ASSERT_TRUE(v.ok()) << error_of(v);
  EXPECT_EQ(to_json(*v), json({{"guest_cid", 3}, {"uds_path", "/v"}}));
}

TEST(Balloon, BodiesAndRanges) {
  auto b = parse_balloon({{"amount_mib", 10}, {"deflate_on_oom", true}});
  ASSERT_TRUE(b.ok()) << error_of(b);
  EXPECT_EQ(b->stats_polling_interval_s, 0);
  expect_error(parse_balloon({{"amount_mib", 10}}), {"missing required field 'deflate_on_oom'"});
  expect_error(
      parse_balloon(
          {{"amount_mib", 1}, {"deflate_on_oom", true}, {"stats_polling_interval_s", 70000}}),
      {"stats_polling_interval_s", "out of range"});
  auto u = parse_balloon_update({{"amount_mib", 32}});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->amount_mib, 32u);
  expect_error(parse_balloon_update({{"amount_mib", 32}, {"deflate_on_oom", true}}),
               {"unknown field 'deflate_on_oom'"});
  auto s = parse_balloon_stats_update({{"stats_polling_interval_s", 3}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->stats_polling_interval_s, 3);

  BalloonStats stats;
  stats.target_mib = 4;
  stats.free_memory = 100;
  json j = to_json(stats);
  EXPECT_EQ(j["free_memory"], 100);
  EXPECT_FALSE(j.contains("swap_in"));
}

TEST(Logger, LevelIsCaseInsensitive) {
  auto l = parse_logger({{"level", "WARN"}});
  ASSERT_TRUE(l.ok()) << error_of(l);
  EXPECT_EQ(l->level, LogLevel::kWarning);
  EXPECT_EQ(to_json(*l)["level"], "Warning");
  expect_error(parse_logger({{"level", "loud"}}), {"level", "'loud'"});
}

TEST(Metrics, PropertiesMustBeStrings) {
  expect_error(parse_metrics({{"metrics_path", "/m"}, {"properties", {{"a", 1}}}}),
               {"properties", "'a'", "string"});
  expect_error(parse_metrics(json::object()), {"missing required field 'metrics_path'"});
}

TEST(MmdsConfig, Validation) {
  auto m = parse_mmds_config({{"network_interfaces", {"eth0"}}});
  ASSERT_TRUE(m.ok()) << error_of(m);
  EXPECT_EQ(m->version, MmdsVersion::kV1);
  EXPECT_EQ(m->ipv4_address.to_string(), "169.254.169.254");
  expect_error(parse_mmds_config({{"network_interfaces", json::array()}}), {"at least one"});
  expect_error(parse_mmds_config(json::object()), {"missing required field 'network_interfaces'"});
  expect_error(parse_mmds_config({{"network_interfaces", {"eth0"}}, {"version", "V3"}}),
               {"version", "V1, V2"});
  for (const char* bad : {"10.0.0.1", "169.254.0.1", "169.254.255.1"}) {
    expect_error(parse_mmds_config({{"network_interfaces", {"eth0"}}, {"ipv4_address", bad}}),
                 {"ipv4_address", "link-local"});
  }
  for (const char* bad : {"169.254.1", "169.254.01.1", "169.254.1.256", "169.254.1.1.1"}) {
    expect_error(parse_mmds_config({{"network_interfaces", {"eth0"}}, {"ipv4_address", bad}}),
                 {"ipv4_address", "invalid IPv4 address"});
  }
}

TEST(CpuConfig, Validation) {
  auto leaf = [](json modifier) {
    return json{{"cpuid_modifiers",
                 {{{"leaf", "0x1"}, {"subleaf", "0"}, {"flags", 0}, {"modifiers", {modifier}}}}}};
  };
  expect_error(
      parse_cpu_config(leaf({{"register", "eax"}, {"bitmap", "0b" + std::string(33, '1')}})),
      {"cpuid_modifiers[0]: modifiers[0]", "more than 32 bits"});
  expect_error(parse_cpu_config(leaf({{"register", "eax"}, {"bitmap", "0b12"}})),
               {"invalid character '2'"});
  expect_error(parse_cpu_config(leaf({{"register", "rax"}, {"bitmap", "0b1"}})),
               {"register", "eax, ebx, ecx, edx"});
  expect_error(parse_cpu_config({{"kvm_capabilities", {"abc"}}}), {"kvm_capabilities[0]", "abc"});
  expect_error(parse_cpu_config({{"reg_modifiers", json::array()}}), {"reg_modifiers", "aarch64"});
  expect_error(
      parse_cpu_config({{"msr_modifiers", {{{"addr", "0x1ffffffff"}, {"bitmap", "0b1"}}}}}),
      {"addr", "32 bits"});
  auto short_bitmap = parse_cpu_config(leaf({{"register", "edx"}, {"bitmap", "0b10"}}));
  ASSERT_TRUE(short_bitmap.ok()) << error_of(short_bitmap);
  EXPECT_EQ(short_bitmap->cpuid_modifiers[0].modifiers[0].bitmap, (BitFilter{0b11, 0b10}));
  EXPECT_EQ(BitFilter({0b11, 0b10}).apply(0xf1), 0xf2u);
}

TEST(MemoryHotplug, Validation) {
  auto ok = parse_memory_hotplug({{"total_size_mib", 256}});
  ASSERT_TRUE(ok.ok()) << error_of(ok);
  EXPECT_EQ(ok->block_size_mib, 2u);
  EXPECT_EQ(ok->slot_size_mib, 128u);
  expect_error(parse_memory_hotplug({{"total_size_mib", 256}, {"block_size_mib", 3}}),
               {"block_size_mib", "power of 2"});
  expect_error(parse_memory_hotplug({{"total_size_mib", 256}, {"slot_size_mib", 64}}),
               {"slot_size_mib", "at least 128"});
  expect_error(parse_memory_hotplug({{"total_size_mib", 300}}), {"total_size_mib", "multiple"});
}

// ---- API bodies ----

TEST(ApiBodies, InstanceActionAndVmState) {
  auto a = parse_instance_action({{"action_type", "InstanceStart"}});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->action_type, ActionType::kInstanceStart);
  EXPECT_EQ(to_json(*a), json({{"action_type", "InstanceStart"}}));
  expect_error(parse_instance_action({{"action_type", "Reboot"}}),
               {"action_type", "FlushMetrics, InstanceStart, SendCtrlAltDel", "'Reboot'"});
  expect_error(parse_instance_action(json::object()), {"missing required field 'action_type'"});

  auto v = parse_vm_state({{"state", "Paused"}});
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->state, VmState::kPaused);
  expect_error(parse_vm_state({{"state", "Stopped"}}), {"state", "Paused, Resumed"});
}

TEST(ApiBodies, SnapshotCreate) {
  auto c = parse_snapshot_create_params({{"snapshot_path", "s"}, {"mem_file_path", "m"}});
  ASSERT_TRUE(c.ok()) << error_of(c);
  EXPECT_EQ(c->snapshot_type, SnapshotType::kFull);
  auto rt = parse_snapshot_create_params(to_json(*c));
  ASSERT_TRUE(rt.ok());
  EXPECT_EQ(*rt, *c);
  expect_error(parse_snapshot_create_params(
                   {{"snapshot_path", "s"}, {"mem_file_path", "m"}, {"snapshot_type", "Inc"}}),
               {"snapshot_type", "Full, Diff"});
  expect_error(parse_snapshot_create_params({{"snapshot_path", "s"}}),
               {"missing required field 'mem_file_path'"});
}

TEST(ApiBodies, SnapshotLoad) {
  json body = {{"snapshot_path", "vm.snap"},
               {"mem_backend", {{"backend_type", "Uffd"}, {"backend_path", "/uffd.sock"}}},
               {"resume_vm", true},
               {"network_overrides", {{{"iface_id", "eth0"}, {"host_dev_name", "tap9"}}}},
               {"vsock_override", {{"uds_path", "/new.sock"}}},
               {"huge_pages", "2M"}};
  auto p = parse_snapshot_load_params(body);
  ASSERT_TRUE(p.ok()) << error_of(p);
  EXPECT_EQ(p->mem_backend.backend_type, MemBackendType::kUffd);
  EXPECT_TRUE(p->resume_vm);
  EXPECT_EQ(p->network_overrides[0].host_dev_name, "tap9");
  EXPECT_EQ(p->vsock_override->uds_path, "/new.sock");
  EXPECT_FALSE(p->used_deprecated_fields);
  auto rt = parse_snapshot_load_params(to_json(*p));
  ASSERT_TRUE(rt.ok()) << error_of(rt);
  EXPECT_EQ(*rt, *p);

  // The deprecated spellings map onto the current fields.
  auto old = parse_snapshot_load_params(
      {{"snapshot_path", "s"}, {"mem_file_path", "mem"}, {"enable_diff_snapshots", true}});
  ASSERT_TRUE(old.ok()) << error_of(old);
  EXPECT_EQ(old->mem_backend, (MemBackend{MemBackendType::kFile, "mem"}));
  EXPECT_TRUE(old->track_dirty_pages);
  EXPECT_TRUE(old->used_deprecated_fields);

  json both = body;
  both["mem_file_path"] = "m";
  expect_error(parse_snapshot_load_params(both),
               {"too many fields", "mem_backend", "mem_file_path"});
  json neither = body;
  neither.erase("mem_backend");
  expect_error(parse_snapshot_load_params(neither), {"missing field", "mem_backend"});
  json file_2m = body;
  file_2m["mem_backend"]["backend_type"] = "File";
  expect_error(parse_snapshot_load_params(file_2m), {"2M", "Uffd"});
  json bad_backend = body;
  bad_backend["mem_backend"]["backend_type"] = "Disk";
  expect_error(parse_snapshot_load_params(bad_backend), {"mem_backend:", "File, Uffd"});
  json bad_override = body;
  bad_override["network_overrides"][0]["mac"] = "x";
  expect_error(parse_snapshot_load_params(bad_override),
               {"network_overrides[0]", "unknown field 'mac'"});
}

}  // namespace
}  // namespace ignition::config
