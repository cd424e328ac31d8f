// The test guest against ignition's virtio-vsock and virtio-balloon. vsock: Firecracker's hybrid
// backend, several connections each way at once (guest to `<uds_path>_<port>`, host through
// `uds_path` with CONNECT), every byte checked on both sides. Balloon: inflated to the config's
// target, deflated by PATCH /balloon on the API socket, the freed memory checked on the host.
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ign_protocol.h"
#include "support/ignition_vm.hpp"
#include "support/unix_socket.hpp"

namespace ignition::test {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

// guest/tests/virtio_vsock.c: how many connections each way.
constexpr const char* kOptVsockConns = "ign.vsock.conns=";
constexpr uint64_t kStreamSeed = 0x9e3779b97f4a7c15ull;
constexpr uint32_t kGuestCid = 3;

uint64_t fnv1a64(std::string_view data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The first word of a report value: "8192 gpa=0x..." -> "8192".
std::string first_word(std::string_view value) {
  return std::string(value.substr(0, value.find(' ')));
}

std::string hex64(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// What the guest's connection i sends: xorshift64 from kStreamSeed + i, each word's bytes
// little-endian.
std::string guest_stream(int i, size_t n) {
  std::string s(n, '\0');
  uint64_t x = kStreamSeed + static_cast<uint64_t>(i), word = 0;
  for (size_t k = 0; k < n; ++k) {
    if (k % 8 == 0) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      word = x;
    }
    s[k] = static_cast<char>(word >> (8 * (k % 8)));
  }
  return s;
}

// What host client j sends the guest: different for every client and every offset.
std::string host_stream(int j, size_t n) {
  std::string s(n, '\0');
  uint64_t x = 0x243f6a8885a308d3ull * (static_cast<uint64_t>(j) + 1);
  for (size_t k = 0; k < n; ++k) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    s[k] = static_cast<char>(x >> 56);
  }
  return s;
}

std::string vsock_device(const std::string& uds) {
  return R"("vsock": {"guest_cid": )" + std::to_string(kGuestCid) + R"(, "uds_path": ")" + uds +
         R"("})";
}

std::string vsock_cmdline(uint32_t port, uint32_t listen, size_t bytes, int conns) {
  return std::string(IGN_OPT_VSOCK_PORT) + std::to_string(port) + " " + IGN_OPT_VSOCK_LISTEN +
         std::to_string(listen) + " " + IGN_OPT_VSOCK_BYTES + std::to_string(bytes) + " " +
         kOptVsockConns + std::to_string(conns);
}

// Per-test file names; every one handed out is removed when the test ends.
class TempPaths : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& path : paths_) ::unlink(path.c_str());
  }
  const std::string& temp(const std::string& name) {
    return paths_.emplace_back(test_temp_path(name));
  }
  const std::string& also_remove(const std::string& path) { return paths_.emplace_back(path); }

 private:
  std::vector<std::string> paths_;
};

class IgnitionVsock : public TempPaths {
 protected:
  std::string uds_ = temp("v.sock"), config_ = temp("vm.json");
};

// One host client of the guest's listening port, through `uds_path` and CONNECT.
struct HostClient {
  std::string sent;
  std::string ok_line;  // "OK <host port>"
  std::optional<std::string> echoed;
  std::string error;
};

void run_host_client(const std::string& uds, uint32_t guest_port, HostClient& client) {
  auto fd = unix_connect(uds);
  if (!fd.ok()) {
    client.error = fd.error().message;
    return;
  }
  auto line = write_all(fd->get(), "CONNECT " + std::to_string(guest_port) + "\n");
  auto ok = line.ok() ? read_line(fd->get(), 10s) : Result<std::string>(line.error());
  if (!ok.ok()) {
    client.error = "no OK line: " + ok.error().message;
    return;
  }
  client.ok_line = *ok;
  // The guest echoes while we send: read concurrently, or both sides run out of credit.
  std::thread reader([&] {
    auto data = read_to_eof(fd->get(), 30s);
    if (data.ok())
      client.echoed = std::move(*data);
    else
      client.error = "echo: " + data.error().message;
  });
  auto wrote = write_all(fd->get(), client.sent);
  if (!wrote.ok()) client.error = "send: " + wrote.error().message;
  ::shutdown(fd->get(), SHUT_WR);
  reader.join();
}

// Streams both ways on three connections at once: the guest connects to <uds>_<port> three
// times and sends 2 MiB on each; then the host connects three times through uds_path and each
// client's 1 MiB comes back echoed. A CONNECT to a port the guest does not listen on is
// closed without an answer.
TEST_F(IgnitionVsock, StreamsBothWaysOnSeveralConnections) {
  constexpr int kConns = 3;
  constexpr uint32_t kHostPort = 5000, kGuestPort = 1235, kWrongGuestPort = 4242;
  constexpr size_t kGuestBytes = 2u << 20, kHostBytes = 1u << 20;

  auto listener = unix_listen(also_remove(uds_ + "_" + std::to_string(kHostPort)));
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  std::mutex mu;
  std::vector<std::string> received;  // one per accepted connection, in accept order
  std::vector<std::string> sink_errors;
  std::thread sink([&] {
    std::vector<std::thread> readers;
    for (int i = 0; i < kConns; ++i) {
      auto fd = unix_accept(listener->get(), 30s);
      if (!fd.ok()) {
        std::lock_guard lock(mu);
        sink_errors.push_back("accept: " + fd.error().message);
        break;
      }
      readers.emplace_back([&mu, &received, &sink_errors, fd = std::move(*fd)] {
        auto data = read_to_eof(fd.get(), 30s);
        std::lock_guard lock(mu);
        if (data.ok())
          received.push_back(std::move(*data));
        else
          sink_errors.push_back(data.error().message);
      });
    }
    for (auto& t : readers) t.join();
  });

  std::array<HostClient, kConns> clients;
  for (int j = 0; j < kConns; ++j) clients[j].sent = host_stream(j, kHostBytes);
  std::string wrong_port_answer = "(not tried)";
  std::thread host_side;
  GuestVm vm;
  vm.devices = vsock_device(uds_);
  vm.tests = IGN_TEST_VIRTIO_VSOCK;
  vm.cmdline_extra = vsock_cmdline(kHostPort, kGuestPort, kGuestBytes, kConns);
  vm.timeout = 120s;
  vm.on_line = [&](std::string_view line) {
    if (line.rfind(IGN_LINE_INFO " " IGN_INFO_VSOCK_LISTENING "=", 0) == 0) {
      host_side = std::thread([&] {
        // First a port nobody listens on: the guest answers RST, the stream just closes.
        if (auto fd = unix_connect(uds_); fd.ok()) {
          auto w = write_all(fd->get(), "CONNECT " + std::to_string(kWrongGuestPort) + "\n");
          auto answer = w.ok() ? read_line(fd->get(), 10s) : Result<std::string>(w.error());
          wrong_port_answer = answer.ok() ? "answered: " + *answer : answer.error().message;
        }
        std::vector<std::thread> threads;
        for (auto& c : clients) threads.emplace_back([&] { run_host_client(uds_, kGuestPort, c); });
        for (auto& t : threads) t.join();
      });
    }
    return LineAction{};
  };
  auto run = boot_guest_vm(vm, config_);
  if (host_side.joinable()) host_side.join();
  ::shutdown(listener->get(), SHUT_RDWR);  // an accept still waiting gives up
  sink.join();
  ASSERT_TRUE(run.ok()) << run.error().message;
  const GuestReport& r = run->report;
  ASSERT_TRUE(r.complete()) << run->explain();
  EXPECT_TRUE(run->process.exited_ok()) << run->explain();
  ASSERT_TRUE(r.passed(IGN_TEST_VIRTIO_VSOCK)) << run->explain();
  EXPECT_EQ(r.info("vsock.guest_cid"), std::to_string(kGuestCid));

  // Guest to host: each stream arrived whole, and is the one its connection generated.
  EXPECT_TRUE(sink_errors.empty()) << ::testing::PrintToString(sink_errors);
  ASSERT_EQ(received.size(), static_cast<size_t>(kConns)) << run->explain();
  auto sent_reports = r.infos_for("vsock.sent");
  ASSERT_EQ(sent_reports.size(), static_cast<size_t>(kConns));
  std::vector<bool> matched(kConns, false);
  for (const std::string& stream : received) {
    ASSERT_EQ(stream.size(), kGuestBytes);
    int which = -1;
    for (int i = 0; i < kConns; ++i)
      if (!matched[i] && stream == guest_stream(i, kGuestBytes)) which = i;
    ASSERT_GE(which, 0) << "a stream that no guest connection sent (or a repeat)";
    matched[which] = true;
    // "vsock.sent=<n> fnv1a64=<h> credit_waits=<k> conn=<i>"
    const std::string& report = sent_reports[which];
    EXPECT_EQ(detail_field(report, "conn"), std::to_string(which)) << report;
    EXPECT_EQ(first_word(report), std::to_string(kGuestBytes)) << report;
    EXPECT_EQ(detail_field(report, "fnv1a64"), hex64(fnv1a64(stream))) << report;
  }
  EXPECT_EQ(r.info("vsock.client_close"), "rst,rst,rst") << "each SHUTDOWN acknowledged by RST";

  // Host to guest and back: every client got exactly its bytes echoed, and the guest saw
  // exactly those bytes (its hash of what arrived on the connection with that host port).
  auto accepted = r.infos_for("vsock.accepted");
  ASSERT_EQ(accepted.size(), static_cast<size_t>(kConns)) << run->explain();
  for (const HostClient& c : clients) {
    EXPECT_TRUE(c.error.empty()) << c.error;
    ASSERT_EQ(c.ok_line.rfind("OK ", 0), 0u) << c.ok_line;
    ASSERT_TRUE(c.echoed.has_value());
    EXPECT_EQ(c.echoed->size(), kHostBytes);
    EXPECT_TRUE(*c.echoed == c.sent) << "the echo differs from what was sent";
    std::string host_port = c.ok_line.substr(3);
    uint64_t port = std::stoull(host_port);
    EXPECT_GE(port, 1ull << 30) << "host ports come from [2^30, 2^31)";
    EXPECT_LT(port, 1ull << 31);
    auto guest_side = std::find_if(accepted.begin(), accepted.end(), [&](const std::string& a) {
      return detail_field(a, "peer_port") == host_port;
    });
    ASSERT_NE(guest_side, accepted.end()) << "no guest connection from host port " << host_port;
    EXPECT_EQ(detail_field(*guest_side, "received"), std::to_string(kHostBytes)) << *guest_side;
    EXPECT_EQ(detail_field(*guest_side, "fnv1a64"), hex64(fnv1a64(c.sent))) << *guest_side;
  }
  EXPECT_EQ(r.info("vsock.server_close"), "rst,rst,rst");
  EXPECT_EQ(wrong_port_answer.find("end of stream"), 0u)
      << "a CONNECT the guest refuses gets no OK: " << wrong_port_answer;
}

TEST_F(IgnitionVsock, GuestConnectWithNoHostListenerIsRefused) {
  GuestVm vm;
  vm.devices = vsock_device(uds_);
  vm.tests = IGN_TEST_VIRTIO_VSOCK;
  vm.cmdline_extra = vsock_cmdline(5999, 1235, 4096, 1);  // nothing at <uds>_5999
  auto run = boot_guest_vm(vm, config_);
  ASSERT_TRUE(run.ok()) << run.error().message;
  ASSERT_TRUE(run->report.complete()) << run->explain();
  EXPECT_TRUE(run->process.exited_ok()) << run->explain();
  EXPECT_EQ(run->report.fail_detail(IGN_TEST_VIRTIO_VSOCK), "connect refused port=5999 conn=0")
      << run->explain();
}

// ---- balloon ----

// The ignition process started on `config_path` (the test's unique file), found in /proc.
std::optional<pid_t> find_ignition(const std::string& config_path) {
  DIR* proc = ::opendir("/proc");
  if (!proc) return std::nullopt;
  std::optional<pid_t> found;
  while (dirent* e = ::readdir(proc)) {
    if (!std::isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string needle = std::string("--config-file") + '\0' + config_path + '\0';
    if (cmdline.find(needle) != std::string::npos) {
      found = static_cast<pid_t>(std::stol(e->d_name));
      break;
    }
  }
  ::closedir(proc);
  return found;
}

// Bytes of [offset, offset + len) of the guest-RAM memfd of process `pid` that hold pages
// (not holes), found with SEEK_DATA/SEEK_HOLE on the process's own fd.
Result<uint64_t> guest_ram_allocated(pid_t pid, uint64_t offset, uint64_t len) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* fds = ::opendir(dir.c_str());
  if (!fds) return err("{}: {}", dir, errno_string());
  std::string memfd;
  while (dirent* e = ::readdir(fds)) {
    char target[256] = {};
    std::string link = dir + "/" + e->d_name;
    if (::readlink(link.c_str(), target, sizeof(target) - 1) > 0 &&
        std::string_view(target).rfind("/memfd:ignition-guest-ram", 0) == 0)
      memfd = link;
  }
  ::closedir(fds);
  if (memfd.empty()) return err("no ignition-guest-ram memfd in {}", dir);
  UniqueFd fd(::open(memfd.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return err("{}: {}", memfd, errno_string());
  uint64_t allocated = 0, end = offset + len;
  off_t at = static_cast<off_t>(offset);
  while (static_cast<uint64_t>(at) < end) {
    off_t data = ::lseek(fd.get(), at, SEEK_DATA);
    if (data < 0 || static_cast<uint64_t>(data) >= end) break;  // ENXIO: only holes follow
    off_t hole = ::lseek(fd.get(), data, SEEK_HOLE);
    if (hole < 0) return err("SEEK_HOLE: {}", errno_string());
    allocated += std::min<uint64_t>(hole, end) - data;
    at = hole;
  }
  return allocated;
}

// Where the test guest's ELF is loaded (guest/link.ld).
constexpr uint64_t kGuestImageGpa = 0x100000;

class IgnitionBalloon : public TempPaths {
 protected:
  std::string api_ = temp("api.sock"), config_ = temp("vm.json");
};

// The config's amount_mib (32 MiB = 8192 pages) is the target the guest finds at boot; it
// fills the pages, then inflates. Once it reports `actual`, the host checks that those pages
// are gone from the guest-RAM memfd and reads the statistics; PATCH /balloon to 16 MiB makes
// the guest deflate 4096 pages, which read back as zeros.
TEST_F(IgnitionBalloon, InflatesToTheConfiguredTargetAndDeflatesOnPatch) {
  struct Seen {
    std::string touched;  // the guest's balloon.touched= value
    std::optional<uint64_t> allocated_after_inflate;
    std::optional<uint64_t> allocated_image;  // a control: the guest's first page of code
    std::string memfd_error;
    std::optional<HttpResponse> stats, patch, balloon_after_patch;
    std::string api_error;
  } seen;
  GuestVm vm;
  vm.devices =
      R"("balloon": {"amount_mib": 32, "deflate_on_oom": false, "stats_polling_interval_s": 1})";
  vm.tests = IGN_TEST_VIRTIO_BALLOON;
  vm.api_sock = api_;
  vm.timeout = 90s;
  vm.on_line = [&](std::string_view line) {
    const std::string touched = IGN_LINE_INFO " balloon.touched=";
    const std::string inflated = IGN_LINE_INFO " " IGN_INFO_BALLOON_INFLATED "=";
    if (line.rfind(touched, 0) == 0) seen.touched = line.substr(touched.size());
    if (line.rfind(inflated, 0) != 0) return LineAction{};
    // "8192 gpa=0x... bytes=33554432": the balloon's pages are contiguous.
    auto gpa = detail_field(seen.touched, "gpa"), bytes = detail_field(seen.touched, "bytes");
    auto pid = find_ignition(config_);
    if (!pid || !gpa || !bytes) {
      seen.memfd_error = "no ignition process or no balloon.touched line";
    } else {
      // 128 MiB of RAM is one region at GPA 0: file offset == GPA.
      auto allocated =
          guest_ram_allocated(*pid, std::stoull(*gpa, nullptr, 16), std::stoull(*bytes));
      if (allocated.ok())
        seen.allocated_after_inflate = *allocated;
      else
        seen.memfd_error = allocated.error().message;
      if (auto image = guest_ram_allocated(*pid, kGuestImageGpa, 4096); image.ok())
        seen.allocated_image = *image;
    }
    auto stats = http_request(api_, "GET", "/balloon/statistics");
    auto patch = http_request(api_, "PATCH", "/balloon", R"({"amount_mib": 16})");
    auto config = http_request(api_, "GET", "/balloon");
    if (stats.ok()) seen.stats = *stats;
    if (patch.ok()) seen.patch = *patch;
    if (config.ok()) seen.balloon_after_patch = *config;
    for (auto* e : {&stats, &patch, &config})
      if (!e->ok()) seen.api_error += e->error().message + "; ";
    return LineAction{};
  };
  auto run = boot_guest_vm(vm, config_);
  ASSERT_TRUE(run.ok()) << run.error().message;
  const GuestReport& r = run->report;
  ASSERT_TRUE(r.complete()) << run->explain();
  EXPECT_TRUE(run->process.exited_ok()) << run->explain();
  EXPECT_TRUE(seen.api_error.empty()) << seen.api_error;

  // Inflation: the configured target, and the host really got the memory back.
  EXPECT_EQ(r.info("balloon.num_pages"), "8192 actual=0") << run->explain();
  ASSERT_EQ(r.info(IGN_INFO_BALLOON_INFLATED), "8192") << run->explain();
  EXPECT_EQ(first_word(seen.touched), "8192");
  ASSERT_TRUE(seen.allocated_after_inflate.has_value()) << seen.memfd_error;
  EXPECT_EQ(*seen.allocated_after_inflate, 0u)
      << "32 MiB the guest had written to were punched out of guest RAM";
  EXPECT_EQ(seen.allocated_image, 4096u) << "the measurement sees pages that are there";

  ASSERT_TRUE(seen.patch.has_value());
  bool patch_supported = seen.patch->body.find("not supported yet") == std::string::npos;
  if (patch_supported) {
    EXPECT_EQ(seen.patch->status, 204) << seen.patch->body;
    ASSERT_TRUE(seen.balloon_after_patch.has_value());
    EXPECT_EQ(json::parse(seen.balloon_after_patch->body, nullptr, false).value("amount_mib", 0),
              16)
        << seen.balloon_after_patch->body;
  }
  ASSERT_TRUE(seen.stats.has_value());
  bool stats_supported = seen.stats->body.find("not supported yet") == std::string::npos;
  if (stats_supported) {
    EXPECT_EQ(seen.stats->status, 200) << seen.stats->body;
    json stats = json::parse(seen.stats->body, nullptr, false);
    EXPECT_EQ(stats.value("target_pages", 0), 8192) << seen.stats->body;
    EXPECT_EQ(stats.value("actual_pages", 0), 8192) << seen.stats->body;
    EXPECT_EQ(stats.value("target_mib", 0), 32) << seen.stats->body;
    // The guest's own statistics report: "memtot:<bytes>,memfree:<bytes>".
    std::string guest_stats = r.info("balloon.stats").value_or("");
    std::string memtot = guest_stats.substr(guest_stats.find("memtot:") + 7);
    memtot = memtot.substr(0, memtot.find(','));
    EXPECT_EQ(std::to_string(stats.value("total_memory", uint64_t{0})), memtot)
        << seen.stats->body << "\n"
        << guest_stats;
  }

  if (!patch_supported) {
    GTEST_SKIP() << "deflate not checked: PATCH /balloon after boot answers '" << seen.patch->body
                 << "' (src/api/vmm_controller.cpp patch_balloon)"
                 << (stats_supported ? "" : "; GET /balloon/statistics is not supported either");
  }
  // Deflation: down to the patched target; the pages came back zeroed (they were discarded).
  EXPECT_EQ(r.pass_detail(IGN_TEST_VIRTIO_BALLOON), "inflated=8192 deflated=4096 actual=4096")
      << run->explain();
  std::string reclaimed = r.info("balloon.reclaimed").value_or("");
  EXPECT_EQ(first_word(reclaimed), "zeroed") << reclaimed;
  EXPECT_EQ(detail_field(reclaimed, "pages"), "4096") << reclaimed;
  if (!stats_supported)
    GTEST_SKIP() << "statistics not checked: GET /balloon/statistics answers '" << seen.stats->body
                 << "'";
}

}  // namespace
}  // namespace ignition::test
