// Drives QEMU's virtio-mmio devices (microvm, modern transports) with the test guest's ring-3
// virtio driver (guest/virtio/): an independent device implementation to check the driver
// against, before the same guest tests confirm ignition's devices.
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../../guest/include/ign_protocol.h"
#include "support/guest_report.hpp"
#include "support/net_peer.hpp"
#include "support/paths.hpp"
#include "support/pattern_disk.hpp"
#include "support/process.hpp"

namespace ignition::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kQemu = "qemu-system-x86_64";
constexpr uint64_t kDiskSectors = 2048;  // 1 MiB

struct QemuRun {
  ProcessResult process;
  GuestReport report;
};

struct VirtioRun {
  std::string tests;                 // ign.tests=
  std::string cmdline_extra;         // more options
  std::vector<std::string> devices;  // -device/-drive/-netdev ... arguments
  bool acpi = true;                  // acpi=off: QEMU appends virtio_mmio.device= to the cmdline
  std::vector<std::string> prefix;   // e.g. ip netns exec <ns>
  LineHandler on_line;
  std::chrono::milliseconds timeout = 30s;
};

// microvm as in qemu_guest_test.cpp, plus modern (version 2) virtio-mmio transports: QEMU
// 7.2 defaults them to legacy (version 1).
std::vector<std::string> qemu_argv(const VirtioRun& o) {
  std::vector<std::string> argv = o.prefix;
  std::string machine =
      std::string("microvm,acpi=") + (o.acpi ? "on" : "off") + ",pit=off,pic=off,rtc=off";
  std::vector<std::string> qemu = {kQemu,
                                   "-M",
                                   machine,
                                   "-accel",
                                   "kvm",
                                   "-cpu",
                                   "host,-arch-capabilities",
                                   "-m",
                                   "128",
                                   "-smp",
                                   "1",
                                   "-nodefaults",
                                   "-no-user-config",
                                   "-nographic",
                                   "-no-reboot",
                                   "-serial",
                                   "stdio",
                                   "-global",
                                   "virtio-mmio.force-legacy=false",
                                   "-kernel",
                                   guest_image("ignition-test-pvh.elf"),
                                   "-append",
                                   "ign.tests=" + o.tests + " " + o.cmdline_extra};
  argv.insert(argv.end(), qemu.begin(), qemu.end());
  argv.insert(argv.end(), o.devices.begin(), o.devices.end());
  return argv;
}

QemuRun run_qemu(const VirtioRun& o) {
  ProcessOptions p;
  p.argv = qemu_argv(o);
  p.on_line = o.on_line;
  p.timeout = o.timeout;
  auto result = run_process(p);
  if (!result.ok()) {
    ADD_FAILURE() << result.error().message;
    return {};
  }
  QemuRun run{std::move(*result), {}};
  run.report = parse_guest_report(run.process.output);
  return run;
}

std::string explain(const QemuRun& run) {
  return run.process.describe() + "\n" + run.report.summary() + "\n--- console:\n" +
         run.process.output;
}

// A directory that removes itself and everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "ign-virtio-XXXXXX";
    if (::mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) run_command({"rm", "-rf", path_});
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

class QemuVirtioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!find_program(kQemu)) GTEST_SKIP() << kQemu << " is not installed";
    if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable";
    struct stat st;
    if (::stat(guest_image("ignition-test-pvh.elf").c_str(), &st) != 0) {
      GTEST_SKIP() << "guest images not built (target guest_images)";
    }
  }
};

// With ACPI, microvm describes its transports only in the DSDT, so the guest scans QEMU's
// window (IRQs on the second I/O APIC, GSI 24 + slot); without ACPI, QEMU appends
// virtio_mmio.device=<size>@<base>:<irq> for each device with auto-kernel-cmdline (default).
// QEMU fills its transports from the top: the first device takes the last slot.
TEST_F(QemuVirtioTest, FindsDevicesOnTheCommandLineOrByScanning) {
  for (bool acpi : {false, true}) {
    VirtioRun o;
    o.tests = std::string(IGN_TEST_CMDLINE) + "," + IGN_TEST_VIRTIO_DEVICES;
    o.acpi = acpi;
    o.devices = {"-device", "virtio-rng-device", "-device", "virtio-balloon-device"};
    QemuRun run = run_qemu(o);
    const GuestReport& r = run.report;
    ASSERT_TRUE(r.complete()) << explain(run);
    EXPECT_TRUE(r.passed(IGN_TEST_VIRTIO_DEVICES)) << explain(run);
    EXPECT_EQ(r.info("virtio.count"), "2") << explain(run);
    auto devices = r.infos_for("virtio.device");
    ASSERT_EQ(devices.size(), 2u) << explain(run);
    if (!acpi) {
      EXPECT_NE(r.info("cmdline").value_or("").find(" virtio_mmio.device=512@0xfeb00e00:12"),
                std::string::npos)
          << explain(run);
      EXPECT_EQ(devices[0],
                "rng id=4 base=0xfeb00e00 size=0x200 gsi=12 version=2 found-by=cmdline");
      EXPECT_EQ(devices[1],
                "balloon id=5 base=0xfeb00c00 size=0x200 gsi=11 version=2 found-by=cmdline");
    } else {
      EXPECT_EQ(r.info("cmdline").value_or("").find("virtio_mmio"), std::string::npos);
      EXPECT_EQ(devices[0],
                "balloon id=5 base=0xfeb02c00 size=0x200 gsi=46 version=2 found-by=qemu-window");
      EXPECT_EQ(devices[1],
                "rng id=4 base=0xfeb02e00 size=0x200 gsi=47 version=2 found-by=qemu-window");
    }
  }
}

TEST_F(QemuVirtioTest, LegacyTransportIsRefused) {
  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_RNG;
  o.devices = {"-global", "virtio-mmio.force-legacy=true", "-device", "virtio-rng-device"};
  QemuRun run = run_qemu(o);
  ASSERT_TRUE(run.report.complete()) << explain(run);
  auto why = run.report.fail_detail(IGN_TEST_VIRTIO_RNG);
  ASSERT_TRUE(why) << explain(run);
  EXPECT_EQ(why->rfind("init legacy-transport", 0), 0u) << *why;
}

TEST_F(QemuVirtioTest, RngGivesDifferentBytesPolledAndByInterrupt) {
  for (bool acpi : {true, false}) {
    VirtioRun o;
    o.tests = IGN_TEST_VIRTIO_RNG;
    o.acpi = acpi;
    o.devices = {"-device", "virtio-rng-device"};
    QemuRun run = run_qemu(o);
    auto detail = run.report.pass_detail(IGN_TEST_VIRTIO_RNG);
    ASSERT_TRUE(detail) << explain(run);
    EXPECT_EQ(detail_field(*detail, "bytes"), "128");
    EXPECT_GE(std::stoi(detail_field(*detail, "irqs").value_or("0")), 1) << explain(run);
    // VERSION_1 and EVENT_IDX negotiated: bits 32 and 29.
    auto features = run.report.info("rng.features").value_or("");
    EXPECT_EQ(features.rfind("0x120000000 ", 0), 0u) << features;
  }
}

TEST_F(QemuVirtioTest, BlkReadsWritesFlushesAndRefusesOutOfRange) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string disk = dir.file("disk.img");
  write_pattern_disk(disk, kDiskSectors);
  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_BLK;
  o.devices = {"-drive", "id=d0,if=none,format=raw,file=" + disk, "-device",
               "virtio-blk-device,drive=d0,serial=ign-blk-0"};
  QemuRun run = run_qemu(o);
  const GuestReport& r = run.report;
  ASSERT_TRUE(r.complete()) << explain(run);
  auto detail = r.pass_detail(IGN_TEST_VIRTIO_BLK);
  ASSERT_TRUE(detail) << explain(run);
  EXPECT_EQ(r.info("blk.capacity"), std::to_string(kDiskSectors));
  EXPECT_EQ(r.info("blk.blk_size"), "512");
  EXPECT_EQ(r.info("blk.ro"), "0");
  EXPECT_EQ(r.info("blk.read"), std::to_string(IGN_BLK_CHECK_SECTORS));
  EXPECT_EQ(r.info("blk.written"),
            std::to_string(IGN_BLK_WRITE_FIRST) + "+" + std::to_string(IGN_BLK_WRITE_COUNT));
  EXPECT_EQ(r.info("blk.flush"), "ok");
  EXPECT_EQ(r.info("blk.id"), "ign-blk-0");
  EXPECT_EQ(r.info("blk.straddle"), "ioerr");
  EXPECT_GE(std::stoi(r.info("blk.irqs").value_or("0")), 1);
  EXPECT_EQ(first_unexpected_sector(disk, true, kDiskSectors), -1) << "the guest's writes";
}

TEST_F(QemuVirtioTest, BlkReadOnlyDiskRefusesWrites) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string disk = dir.file("disk.img");
  write_pattern_disk(disk, kDiskSectors);
  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_BLK;
  o.devices = {"-drive", "id=d0,if=none,format=raw,readonly=on,file=" + disk, "-device",
               "virtio-blk-device,drive=d0"};
  QemuRun run = run_qemu(o);
  const GuestReport& r = run.report;
  ASSERT_TRUE(r.passed(IGN_TEST_VIRTIO_BLK)) << explain(run);
  EXPECT_EQ(r.info("blk.ro"), "1");
  EXPECT_EQ(r.info("blk.ro_write"), "ioerr");
  EXPECT_FALSE(r.has_info("blk.written"));
  EXPECT_EQ(first_unexpected_sector(disk, false, kDiskSectors), -1) << "the disk must be unchanged";
}

TEST_F(QemuVirtioTest, NetResolvesArpAndGetsItsUdpEchoed) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace and a TAP device";
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "no usable /dev/net/tun";
  if (!find_program("ip")) GTEST_SKIP() << "iproute2 (ip) is not installed";
  auto python = find_program("python3");
  if (!python) GTEST_SKIP() << "python3 (the UDP echo peer) is not installed";
  NetNamespace ns;
  ASSERT_TRUE(ns.ok()) << ns.error();

  std::atomic<bool> peer_ready{false};
  std::optional<ProcessResult> peer;
  std::thread peer_thread([&] {
    ProcessOptions p;
    p.argv = ns.exec({*python, "-c", kEchoPeer, "10.0.2.15", "10.0.2.2", NetNamespace::kTap});
    p.timeout = 40s;
    p.on_line = [&](std::string_view line) {
      if (line == "ready") peer_ready = true;
      return LineAction{};
    };
    auto r = run_process(p);
    if (r.ok()) peer = std::move(*r);
  });
  for (int i = 0; i < 500 && !peer_ready; i++) std::this_thread::sleep_for(10ms);

  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_NET;
  o.cmdline_extra = std::string(IGN_OPT_IP) + "10.0.2.15/24 " + IGN_OPT_PEER + "10.0.2.2";
  o.prefix = ns.exec({});
  o.devices = {"-netdev",
               std::string("tap,id=n0,ifname=") + NetNamespace::kTap + ",script=no,downscript=no",
               "-device", "virtio-net-device,netdev=n0,mac=52:54:00:12:34:56"};
  QemuRun run = run_qemu(o);
  peer_thread.join();
  ASSERT_TRUE(peer_ready) << "the echo peer did not start\n" << (peer ? peer->output : "");
  ASSERT_TRUE(peer.has_value());
  const GuestReport& r = run.report;
  ASSERT_TRUE(r.complete()) << explain(run) << "\n--- peer:\n" << peer->output;
  EXPECT_TRUE(r.passed(IGN_TEST_VIRTIO_NET)) << explain(run) << "\n--- peer:\n" << peer->output;
  EXPECT_EQ(r.info("net.mac"), "52:54:00:12:34:56");
  EXPECT_EQ(r.info("net.link"), "up");
  EXPECT_EQ(r.info("net.echo").value_or("").rfind("ignition virtio-net echo ", 0), 0u);
  EXPECT_NE(peer->output.find("arp-reply 52:54:00:12:34:56"), std::string::npos)
      << "the guest must answer ARP for its address\n"
      << peer->output;
  EXPECT_NE(peer->output.find("echoed ignition virtio-net echo "), std::string::npos)
      << peer->output;
  auto detail = r.pass_detail(IGN_TEST_VIRTIO_NET).value_or("");
  EXPECT_GE(std::stoi(detail_field(detail, "arp_answered").value_or("0")), 1) << detail;
}

// A QMP client, just enough to set the balloon target and read values back: one command at a
// time, asynchronous events skipped.
class Qmp {
 public:
  explicit Qmp(std::string path) : path_(std::move(path)) {}
  ~Qmp() {
    if (fd_ >= 0) ::close(fd_);
  }
  Qmp(const Qmp&) = delete;
  Qmp& operator=(const Qmp&) = delete;

  // The reply line ({"return": ...} or {"error": ...}), or "" if QEMU could not be reached.
  std::string execute(const std::string& json) {
    if (fd_ < 0 && !connect()) return "";
    if (!send_line(json)) return "";
    for (;;) {
      std::string line = read_line();
      if (line.empty()) return "";
      if (line.find("\"return\"") != std::string::npos ||
          line.find("\"error\"") != std::string::npos)
        return line;
    }
  }

 private:
  bool connect() {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      return false;
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (read_line().find("QMP") == std::string::npos) return false;  // the greeting
    return send_line(R"({"execute":"qmp_capabilities"})") && !read_line().empty();
  }
  bool send_line(const std::string& s) {
    std::string line = s + "\n";
    return ::write(fd_, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  }
  std::string read_line() {
    for (;;) {
      size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();  // QMP ends lines with CRLF
        return line;
      }
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return "";
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  std::string path_;
  int fd_ = -1;
  std::string buffer_;
};

std::string balloon_command(uint64_t target_bytes) {
  return R"({"execute":"balloon","arguments":{"value":)" + std::to_string(target_bytes) + "}}";
}

// The guest waits for a target, inflates, waits for a lower one and deflates. QEMU's target is
// the guest's RAM size in bytes: 120 MiB of 128 means num_pages = 2048, then 124 MiB = 1024.
TEST_F(QemuVirtioTest, BalloonInflatesAndDeflatesOnRequest) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  Qmp qmp(dir.file("qmp.sock"));
  constexpr uint64_t kMiB = 1024 * 1024;
  std::vector<std::string> replies;
  std::string actual_after_inflate, stats;
  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_BALLOON;
  o.devices = {"-device", "virtio-balloon-device,id=bal0", "-qmp",
               "unix:" + dir.file("qmp.sock") + ",server=on,wait=off"};
  o.on_line = [&](std::string_view line) {
    if (line == IGN_LINE_INFO " " IGN_INFO_BALLOON_READY) {
      replies.push_back(qmp.execute(balloon_command(120 * kMiB)));
    } else if (line.rfind(IGN_LINE_INFO " " IGN_INFO_BALLOON_INFLATED "=", 0) == 0) {
      actual_after_inflate = qmp.execute(R"({"execute":"query-balloon"})");
      stats = qmp.execute(
          R"({"execute":"qom-get","arguments":{"path":"/machine/peripheral/bal0","property":"guest-stats"}})");
      replies.push_back(qmp.execute(balloon_command(124 * kMiB)));
    }
    return LineAction{};
  };
  QemuRun run = run_qemu(o);
  const GuestReport& r = run.report;
  ASSERT_TRUE(r.complete()) << explain(run);
  ASSERT_EQ(replies.size(), 2u) << explain(run);
  for (const auto& reply : replies) EXPECT_EQ(reply, R"({"return": {}})");
  auto detail = r.pass_detail(IGN_TEST_VIRTIO_BALLOON);
  ASSERT_TRUE(detail) << explain(run);
  EXPECT_EQ(*detail, "inflated=2048 deflated=1024 actual=1024");
  EXPECT_EQ(r.info(IGN_INFO_BALLOON_INFLATED), "2048");
  // QEMU reports actual as the RAM the guest keeps: 128 MiB - 2048 pages.
  EXPECT_EQ(actual_after_inflate, R"({"return": {"actual": )" + std::to_string(120 * kMiB) + "}}");
  // The statistics buffer reached the device (offered by QEMU, so negotiated).
  auto guest_stats = r.info("balloon.stats").value_or("");
  auto memtot = guest_stats.substr(guest_stats.find("memtot:") + 7);
  memtot = memtot.substr(0, memtot.find(','));
  EXPECT_NE(stats.find(R"("stat-total-memory": )" + memtot), std::string::npos) << stats << "\n"
                                                                                << guest_stats;
}

// The misbehaving driver against QEMU. What QEMU 7.2 does, recorded here: chains that break
// the ring's structure (a loop, a next or head index past the queue, an available index that
// jumps past the queue size, lengths whose sum wraps) make it set DEVICE_NEEDS_RESET; but DMA
// to addresses with no RAM behind them (beyond RAM, the MMIO gap, wrapping past 2^64) goes
// through a bounce buffer into nothing and completes as if it had worked. The guest calls that
// "accepted" and fails the test, which is what ignition's devices must not do; QEMU survives
// every case and works again after a reset.
TEST_F(QemuVirtioTest, EvilDriverCasesAndQemusReactions) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string disk = dir.file("disk.img");
  write_pattern_disk(disk, kDiskSectors);
  struct Case {
    const char* device;
    std::vector<std::string> args;
  };
  const Case cases[] = {
      {"rng", {"-device", "virtio-rng-device"}},
      {"blk",
       {"-drive", "id=d0,if=none,format=raw,file=" + disk, "-device",
        "virtio-blk-device,drive=d0"}},
  };
  for (const Case& c : cases) {
    VirtioRun o;
    o.tests = IGN_TEST_VIRTIO_EVIL;
    o.cmdline_extra = std::string(IGN_OPT_EVIL_DEVICE) + c.device;
    o.devices = c.args;
    QemuRun run = run_qemu(o);
    const GuestReport& r = run.report;
    ASSERT_TRUE(r.complete()) << c.device << ": the guest must survive\n" << explain(run);
    EXPECT_TRUE(run.process.exited_ok()) << explain(run);
    EXPECT_EQ(r.infos_for("evil.case").size(), 10u) << explain(run);
    EXPECT_EQ(r.info("evil.recovered").value_or("").rfind("yes ", 0), 0u) << explain(run);
    for (const char* structural :
         {"looped_chain", "next_out_of_range", "head_out_of_range", "avail_idx_jump", "len_wrap"}) {
      auto what = r.info(std::string("evil.") + structural).value_or("");
      EXPECT_EQ(what, "needs-reset status=0x4f -> rejected") << c.device << " " << structural;
    }
    for (const char* wild : {"beyond_ram", "mmio_gap", "addr_wrap"}) {
      auto what = r.info(std::string("evil.") + wild).value_or("");
      EXPECT_NE(what.find("-> accepted"), std::string::npos) << c.device << " " << wild;
    }
    EXPECT_EQ(r.fail_detail(IGN_TEST_VIRTIO_EVIL),
              "accepted=beyond_ram,mmio_gap,addr_wrap recovered=1")
        << explain(run);
  }
}

uint64_t fnv1a64(const std::string& data) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : data) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// The host's end of a vsock stream socket (AF_VSOCK): reads until EOF, or a timeout.
std::optional<std::string> read_all(int fd) {
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n == 0) return data;
    if (n < 0) return std::nullopt;
    data.append(buf, static_cast<size_t>(n));
  }
}

void set_timeouts(int fd) {
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// QEMU's vsock device is vhost-vsock: the host kernel is the device, and the host side is a
// plain AF_VSOCK socket. The guest connects to CID 2 and streams; then the host connects to
// the guest's listening port and checks the echo.
TEST_F(QemuVirtioTest, VsockStreamsToTheHostAndEchoes) {
  if (::access("/dev/vhost-vsock", R_OK | W_OK) != 0) {
    GTEST_SKIP() << "no /dev/vhost-vsock (the host kernel needs the vhost_vsock module): QEMU's "
                    "vhost-vsock-device cannot run here";
  }
  constexpr uint32_t kGuestCid = 42;
  const uint32_t host_port = 20000 + static_cast<uint32_t>(::getpid() % 10000);
  constexpr uint32_t kGuestPort = 1235;
  constexpr size_t kStreamBytes = 4u << 20;

  int listener = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0) << std::strerror(errno);
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = VMADDR_CID_ANY;
  addr.svm_port = host_port;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  ASSERT_EQ(::listen(listener, 1), 0);
  set_timeouts(listener);

  std::optional<std::string> received;
  std::thread receiver([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    set_timeouts(fd);
    received = read_all(fd);
    ::close(fd);
  });

  std::string sent_to_guest;
  for (size_t i = 0; i < 256 * 1024; i++)
    sent_to_guest.push_back(static_cast<char>(i * 7 + (i >> 9)));
  std::optional<std::string> echoed;
  std::thread echo_client;
  VirtioRun o;
  o.tests = IGN_TEST_VIRTIO_VSOCK;
  o.cmdline_extra = std::string(IGN_OPT_VSOCK_PORT) + std::to_string(host_port) + " " +
                    IGN_OPT_VSOCK_LISTEN + std::to_string(kGuestPort) + " " + IGN_OPT_VSOCK_BYTES +
                    std::to_string(kStreamBytes);
  o.devices = {"-device", "vhost-vsock-device,guest-cid=" + std::to_string(kGuestCid)};
  o.timeout = 90s;
  o.on_line = [&](std::string_view line) {
    if (line.rfind(IGN_LINE_INFO " " IGN_INFO_VSOCK_LISTENING "=", 0) == 0) {
      echo_client = std::thread([&] {
        int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_vm guest{};
        guest.svm_family = AF_VSOCK;
        guest.svm_cid = kGuestCid;
        guest.svm_port = kGuestPort;
        set_timeouts(fd);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&guest), sizeof(guest)) == 0) {
          std::thread reader([&] { echoed = read_all(fd); });
          size_t off = 0;
          while (off < sent_to_guest.size()) {
            ssize_t n = ::write(fd, sent_to_guest.data() + off, sent_to_guest.size() - off);
            if (n <= 0) break;
            off += static_cast<size_t>(n);
          }
          ::shutdown(fd, SHUT_WR);
          reader.join();
        }
        ::close(fd);
      });
    }
    return LineAction{};
  };
  QemuRun run = run_qemu(o);
  receiver.join();
  if (echo_client.joinable()) echo_client.join();
  ::close(listener);

  const GuestReport& r = run.report;
  ASSERT_TRUE(r.complete()) << explain(run);
  EXPECT_TRUE(r.passed(IGN_TEST_VIRTIO_VSOCK)) << explain(run);
  EXPECT_EQ(r.info("vsock.guest_cid"), std::to_string(kGuestCid));
  ASSERT_TRUE(received.has_value()) << "the host never got the guest's stream\n" << explain(run);
  EXPECT_EQ(received->size(), kStreamBytes);
  // "vsock.sent=<n> fnv1a64=<h> credit_waits=<k>": what the guest sent is what arrived.
  std::string sent = r.info("vsock.sent").value_or("");
  char fnv[32];
  std::snprintf(fnv, sizeof(fnv), "0x%016llx", static_cast<unsigned long long>(fnv1a64(*received)));
  EXPECT_EQ(sent.substr(0, sent.find(' ')), std::to_string(received->size())) << sent;
  EXPECT_EQ(detail_field(sent, "fnv1a64"), fnv) << sent;
  ASSERT_TRUE(echoed.has_value()) << explain(run);
  EXPECT_EQ(*echoed == sent_to_guest, true) << "echo of " << echoed->size() << " bytes differs";
}

}  // namespace
}  // namespace ignition::test
