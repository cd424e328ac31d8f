// machine-config huge_pages: "2M" puts guest RAM on hugetlbfs pages reserved from the host's
// pool when the VM is created (a pool too small is a clear error, not a SIGBUS later),
// "Transparent" asks for transparent huge pages; a snapshot of a 2M guest is restored on
// 4 KiB pages only when asked (huge_pages "None"), as Firecracker restores 2M snapshots only
// on 2M pages. The tests grow the host's pool for their guests and shrink it back.
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>
#include <regex>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "support/guest_report.hpp"
#include "support/paths.hpp"
#include "support/process.hpp"
#include "support/unix_socket.hpp"
#include "vmm/machine.hpp"

namespace ignition::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kPool = "/proc/sys/vm/nr_hugepages";

long read_long(const std::string& path) {
  long v = -1;
  std::ifstream(path) >> v;
  return v;
}

long meminfo(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  for (std::string k; in >> k;) {
    long v = 0;
    in >> v;
    if (k == key) return v;
    in.ignore(256, '\n');
  }
  return -1;
}

// The smaps entry of the mapping holding `addr`: its KernelPageSize (kB) and VmFlags.
struct Mapping {
  long kernel_page_kb = 0;
  std::string flags;
};
Mapping mapping_of(const void* addr) {
  auto a = reinterpret_cast<uintptr_t>(addr);
  std::ifstream in("/proc/self/smaps");
  Mapping m;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (line.find(':') > line.find(' ') && head >> std::hex >> lo >> dash >> hi && dash == '-') {
      if (inside) break;
      inside = a >= lo && a < hi;
      continue;
    }
    if (!inside) continue;
    if (line.rfind("KernelPageSize:", 0) == 0) m.kernel_page_kb = std::stol(line.substr(15));
    if (line.rfind("VmFlags:", 0) == 0) m.flags = line.substr(8) + " ";
  }
  return m;
}

config::VmConfig guest_config(const std::string& huge_pages, uint32_t mem_mib = 128) {
  config::VmConfig c;
  c.machine_config.vcpu_count = 2;
  c.machine_config.mem_size_mib = mem_mib;
  c.machine_config.huge_pages = huge_pages;
  c.boot_source.kernel_image_path = guest_image("ignition-test.elf");
  c.boot_source.boot_args = "ign.tests=boot,cmdline,e820,smp,timer ign.exit=reboot";
  return c;
}

class HugePagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Room for a 128 MiB guest (64 pages): the pool grows by kExtra and shrinks by as much
    // at the end, whatever else uses it. ctest runs these tests one at a time
    // (RESOURCE_LOCK host_hugepage_pool in tests/CMakeLists.txt).
    // The kernel may grow it by less than asked (fragmentation): whatever it added goes.
    long pool = read_long(kPool);
    if (pool >= 0) std::ofstream(kPool) << pool + kExtra;
    grown_ = std::max(0L, read_long(kPool) - pool);
    if (grown_ < kExtra || meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:") < 64)
      GTEST_SKIP() << "cannot grow the host's 2 MiB page pool (" << kPool << ")";
    dir_ = ::testing::TempDir() + "ign-huge-" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (grown_ > 0) std::ofstream(kPool) << read_long(kPool) - grown_;
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  static constexpr long kExtra = 70;
  long grown_ = 0;  // pages this test added to the pool
  std::string dir_;
};

TEST_F(HugePagesTest, TwoMegabytePagesBackGuestRamAndTheGuestRuns) {
  vmm::MachineIo io;
  io.console_out = -1;
  long free_before = meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:");
  auto machine = vmm::Machine::create(guest_config("2M"), io);
  ASSERT_TRUE(machine.ok()) << machine.error().message;
  const auto& memory = (*machine)->memory();
  EXPECT_EQ(memory.backing_page_size(), 2u << 20);
  EXPECT_EQ(mapping_of(memory.regions().front().host).kernel_page_kb, 2048);
  EXPECT_EQ(free_before - (meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:")), 64)
      << "all 64 pages are the VM's from the start";
  auto outcome = (*machine)->run();
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  EXPECT_EQ(outcome->kind, vmm::RunOutcome::Kind::Reset) << "the guest ends by rebooting";
}

TEST_F(HugePagesTest, APoolTooSmallIsAClearErrorAtCreation) {
  long free_pages = meminfo("HugePages_Free:") - meminfo("HugePages_Rsvd:");
  auto mib = static_cast<uint32_t>(2 * (free_pages + 16));
  vmm::MachineIo io;
  io.console_out = -1;
  auto machine = vmm::Machine::create(guest_config("2M", mib), io);
  ASSERT_FALSE(machine.ok());
  const std::string& message = machine.error().message;
  EXPECT_NE(message.find("cannot reserve " + std::to_string(free_pages + 16) + " huge pages"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("/proc/sys/vm/nr_hugepages"), std::string::npos) << message;
}

// What ignition controls: the advice. Whether the kernel then uses huge pages for this
// shared memory is the host's shmem_enabled setting (docs/api.md#huge-pages).
TEST_F(HugePagesTest, TransparentAdvisesHugePages) {
  vmm::MachineIo io;
  io.console_out = -1;
  auto machine = vmm::Machine::create(guest_config("Transparent"), io);
  ASSERT_TRUE(machine.ok()) << machine.error().message;
  EXPECT_NE(mapping_of((*machine)->memory().regions().front().host).flags.find(" hg "),
            std::string::npos)
      << "MADV_HUGEPAGE shows as the hg VmFlag";
  auto plain = vmm::Machine::create(guest_config("None"), io);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(mapping_of((*plain)->memory().regions().front().host).flags.find(" hg "),
            std::string::npos);
}

// A 2M guest snapshotted at its ready point: restored from its file as it was, it is refused
// with the ways out named; loaded with huge_pages "None" (API) or --huge-pages None (CLI), it
// carries on on 4 KiB pages; through a Uffd handler it carries on on 2 MiB pages, the handler
// copying them 2 MiB at a time (Firecracker's huge-page restore).
TEST_F(HugePagesTest, ASnapshotOnHugePagesRestoresOnSmallPagesOrThroughUffd) {
  std::string config_path = dir_ + "/vm.json", store = dir_ + "/store";
  std::ofstream(config_path) << json{
      {"boot-source",
       {{"kernel_image_path", guest_image("ignition-test.elf")},
        {"boot_args", "ign.tests=boot,cmdline,boottime,e820,smp,timer"}}},
      {"machine-config",
       {{"vcpu_count", 2},
        {"mem_size_mib", 128},
        {"huge_pages", "2M"}}}}.dump();
  ProcessOptions snap;
  snap.argv = {ignition_binary(), "--store",  store, "snapshot", "base",
               "--config-file",   config_path};
  auto base = run_process(snap);
  ASSERT_TRUE(base.ok() && base->exited_ok()) << (base.ok() ? base->output : "");
  std::string state = store + "/snapshots/base/state", memory = store + "/snapshots/base/memory";

  ProcessOptions as_saved;
  as_saved.argv = {ignition_binary(), "--store", store, "restore", "base"};
  auto refused = run_process(as_saved);
  ASSERT_TRUE(refused.ok());
  EXPECT_FALSE(refused->exited_ok()) << refused->output;
  EXPECT_NE(refused->output.find("huge_pages \"None\""), std::string::npos) << refused->output;
  as_saved.argv.insert(as_saved.argv.end(), {"--huge-pages", "None"});
  auto on_small_pages = run_process(as_saved);
  ASSERT_TRUE(on_small_pages.ok());
  EXPECT_TRUE(on_small_pages->exited_ok()) << on_small_pages->output;
  EXPECT_EQ(parse_guest_report(on_small_pages->output).boots, 0) << on_small_pages->output;
  // Clones likewise: refused as the snapshot is, carried on with --huge-pages None.
  ProcessOptions clone;
  clone.argv = {ignition_binary(), "--store", store, "clone", "base", "-n", "1"};
  auto clone_refused = run_process(clone);
  ASSERT_TRUE(clone_refused.ok());
  EXPECT_FALSE(clone_refused->exited_ok()) << clone_refused->output;
  clone.argv.insert(clone.argv.end(), {"--huge-pages", "None"});
  auto cloned = run_process(clone);
  ASSERT_TRUE(cloned.ok());
  EXPECT_TRUE(cloned->exited_ok()) << cloned->output;
  std::smatch id;
  ASSERT_TRUE(std::regex_search(cloned->output, id, std::regex(R"((base\.\d+)\texit 0)")))
      << cloned->output;
  std::ifstream console(store + "/instances/" + id[1].str() + "/console.log");
  std::string clone_console((std::istreambuf_iterator<char>(console)), {});
  auto clone_report = parse_guest_report(clone_console);
  EXPECT_EQ(clone_report.boots, 0) << clone_console;
  EXPECT_TRUE(clone_report.ended && clone_report.fails.empty()) << clone_console;

  std::string sock = dir_ + "/api.sock";
  auto vmm = start_process({.argv = {ignition_binary(), "--api-sock", sock}, .timeout = 60s});
  ASSERT_TRUE(wait_for_socket(sock));
  json load{{"snapshot_path", state},
            {"mem_backend", {{"backend_type", "File"}, {"backend_path", memory}}}};
  auto as_2m = http_request(sock, "PUT", "/snapshot/load", load.dump());
  ASSERT_TRUE(as_2m.ok()) << as_2m.error().message;
  EXPECT_EQ(as_2m->status, 400) << as_2m->body;
  EXPECT_NE(as_2m->body.find("huge_pages"), std::string::npos) << as_2m->body;
  load["huge_pages"] = "None";
  load["resume_vm"] = true;
  auto loaded = http_request(sock, "PUT", "/snapshot/load", load.dump());
  ASSERT_TRUE(loaded.ok()) << loaded.error().message;
  EXPECT_EQ(loaded->status, 204) << loaded->body;
  auto config = http_request(sock, "GET", "/vm/config");
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(json::parse(config->body, nullptr, false)["machine-config"]["huge_pages"], "None")
      << config->body;
  auto run = vmm.get();
  ASSERT_TRUE(run.exited_ok()) << run.describe() << "\n" << run.output;
  auto report = parse_guest_report(run.output);
  EXPECT_EQ(report.boots, 0) << run.output;
  EXPECT_TRUE(report.ended && report.fails.empty()) << run.output;
  EXPECT_TRUE(report.passed("smp")) << run.output;

  // Through the uffd handler, on 2 MiB pages.
  std::string handler_sock = dir_ + "/uffd.sock", sock2 = dir_ + "/api2.sock";
  auto handler = start_process(
      {.argv = {ignition_binary(), "uffd-handler", "--socket", handler_sock, "--memory", memory},
       .timeout = 60s});
  auto vmm2 = start_process({.argv = {ignition_binary(), "--api-sock", sock2}, .timeout = 60s});
  ASSERT_TRUE(wait_for_socket(sock2) && wait_for_socket(handler_sock));
  json uffd_load{{"snapshot_path", state},
                 {"mem_backend", {{"backend_type", "Uffd"}, {"backend_path", handler_sock}}},
                 {"resume_vm", true}};
  auto by_uffd = http_request(sock2, "PUT", "/snapshot/load", uffd_load.dump());
  ASSERT_TRUE(by_uffd.ok()) << by_uffd.error().message;
  EXPECT_EQ(by_uffd->status, 204) << by_uffd->body;
  auto run2 = vmm2.get();
  ASSERT_TRUE(run2.exited_ok()) << run2.describe() << "\n" << run2.output;
  auto report2 = parse_guest_report(run2.output);
  EXPECT_EQ(report2.boots, 0) << run2.output;
  EXPECT_TRUE(report2.ended && report2.fails.empty()) << run2.output;
  auto served = handler.get();
  ASSERT_TRUE(served.exited_ok()) << served.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(served.output, m, std::regex(R"(: (\d+) pages copied)")))
      << served.output;
  EXPECT_GT(std::stoul(m[1]), 0u) << served.output;
  EXPECT_LE(std::stoul(m[1]), 64u) << "whole 2 MiB pages: at most 64 for 128 MiB";
}

}  // namespace
}  // namespace ignition::test
