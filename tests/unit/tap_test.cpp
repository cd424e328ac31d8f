// The TAP backend: opening with vnet headers, the errors an operator sees, offload flags as
// the kernel reports them, and a frame answered by a real kernel. Every TAP lives in a
// private network namespace made for the test, so nothing touches the host's network.
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <memory>

#include <gtest/gtest.h>

#include "devices/tap.hpp"
#include "support/net_peer.hpp"
#include "support/process.hpp"

namespace ignition::devices {
namespace {

using namespace std::chrono_literals;

struct TapTest : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0)
      GTEST_SKIP() << "needs root and /dev/net/tun (TAPs are made in a private netns)";
    if (!test::find_program("ip")) GTEST_SKIP() << "needs iproute2's ip";
    auto made = test::NetNamespace::create("ign-test");
    ASSERT_TRUE(made.ok()) << made.error().message;
    ns = std::move(*made);
  }

  Result<Tap> open_in_ns(const std::string& name) {
    std::optional<Result<Tap>> tap;
    EXPECT_TRUE(ns->in_ns([&] { tap.emplace(Tap::open(name)); }));
    if (!tap) return err("could not enter the namespace");
    return std::move(*tap);
  }

  // ETHTOOL_G* for `ifname` inside the namespace: 1 on, 0 off, -1 error.
  int ethtool_get(const std::string& ifname, uint32_t cmd) {
    UniqueFd sock;
    ns->in_ns([&] { sock.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)); });
    ethtool_value value{.cmd = cmd, .data = 0};
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, ifname.c_str(), IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(sock.get(), SIOCETHTOOL, &ifr) < 0) return -1;
    return value.data ? 1 : 0;
  }

  std::unique_ptr<test::NetNamespace> ns;
};

TEST_F(TapTest, OpensANonBlockingTapWithTwelveByteVnetHeaders) {
  auto tap = open_in_ns("igntap0");
  ASSERT_TRUE(tap.ok()) << tap.error().message;
  EXPECT_EQ(tap->name(), "igntap0");
  ifreq ifr{};
  ASSERT_EQ(::ioctl(tap->fd(), TUNGETIFF, &ifr), 0);
  EXPECT_EQ(ifr.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR),
            IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  int hdr = 0;
  ASSERT_EQ(::ioctl(tap->fd(), TUNGETVNETHDRSZ, &hdr), 0);
  EXPECT_EQ(hdr, Tap::kVnetHdrSize);
  EXPECT_TRUE(::fcntl(tap->fd(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(tap->fd(), F_GETFD) & FD_CLOEXEC);
  std::array<uint8_t, 2048> buf;
  auto got = tap->read(buf);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_FALSE(*got) << "nothing queued: the read must not block";
}

TEST_F(TapTest, EmptyNameLetsTheKernelChoose) {
  auto tap = open_in_ns("");
  ASSERT_TRUE(tap.ok()) << tap.error().message;
  EXPECT_EQ(tap->name().rfind("tap", 0), 0u) << tap->name();
}

TEST_F(TapTest, ClosingTheTapRemovesTheInterface) {
  {
    auto tap = open_in_ns("igntap0");
    ASSERT_TRUE(tap.ok()) << tap.error().message;
    EXPECT_TRUE(ns->ip({"link", "show", "igntap0"}));
  }
  EXPECT_FALSE(ns->ip({"link", "show", "igntap0"}));
}

TEST_F(TapTest, ErrorsNameTheTapAndTheCause) {
  auto too_long = Tap::open("a-name-of-16-chr");
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.error().message.find("TAP a-name-of-16-chr: the name is longer than 15"),
            std::string::npos)
      << too_long.error().message;

  auto not_a_tap = open_in_ns("lo");
  ASSERT_FALSE(not_a_tap.ok());
  EXPECT_NE(not_a_tap.error().message.find("TAP lo: TUNSETIFF: Invalid argument"),
            std::string::npos)
      << not_a_tap.error().message;
  EXPECT_NE(not_a_tap.error().message.find("not a TAP"), std::string::npos);

  auto first = open_in_ns("igntap0");
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = open_in_ns("igntap0");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.error().message.find("TAP igntap0: TUNSETIFF: Device or resource busy"),
            std::string::npos)
      << second.error().message;
}

TEST_F(TapTest, MissingCapabilityIsExplained) {
  std::optional<Result<Tap>> tap;
  ns->in_ns([&] {
    // Capabilities are per thread: drop them all on this one only.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ASSERT_EQ(::syscall(SYS_capset, &header, data), 0) << errno_string();
    tap.emplace(Tap::open("igntap0"));
  });
  ASSERT_TRUE(tap);
  ASSERT_FALSE(tap->ok());
  EXPECT_NE(tap->error().message.find("TAP igntap0: TUNSETIFF: Operation not permitted"),
            std::string::npos)
      << tap->error().message;
  EXPECT_NE(tap->error().message.find("CAP_NET_ADMIN"), std::string::npos);
}

TEST_F(TapTest, PersistentTapOwnedByTheUserNeedsNoCapability) {
  // What an unprivileged VMM does: an administrator made the TAP for its user beforehand.
  ASSERT_TRUE(ns->ip({"tuntap", "add", "igntap0", "mode", "tap", "user", "0"}));
  std::optional<Result<Tap>> tap;
  ns->in_ns([&] {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    ASSERT_EQ(::syscall(SYS_capset, &header, data), 0) << errno_string();
    tap.emplace(Tap::open("igntap0"));
    if (tap->ok()) {
      auto set = (*tap)->set_offload(kTapOffloadCsum | kTapOffloadTso4);
      EXPECT_TRUE(set.ok()) << set.error().message;
    }
  });
  ASSERT_TRUE(tap);
  ASSERT_TRUE(tap->ok()) << tap->error().message;
  int hdr = 0;
  ASSERT_EQ(::ioctl((*tap)->fd(), TUNGETVNETHDRSZ, &hdr), 0);
  EXPECT_EQ(hdr, Tap::kVnetHdrSize);
}

TEST_F(TapTest, OffloadFlagsReachTheKernel) {
  auto tap = open_in_ns("igntap0");
  ASSERT_TRUE(tap.ok()) << tap.error().message;
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTXCSUM), 0);
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTSO), 0);

  auto set = tap->set_offload(kTapOffloadCsum | kTapOffloadTso4 | kTapOffloadTso6);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(tap->offload(), kTapOffloadCsum | kTapOffloadTso4 | kTapOffloadTso6);
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTXCSUM), 1);
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTSO), 1);

  // UFO is accepted (or quietly left out by kernels that dropped it).
  set = tap->set_offload(kTapOffloadCsum | kTapOffloadUfo);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(tap->offload() & kTapOffloadCsum, kTapOffloadCsum);
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTSO), 0);

  set = tap->set_offload(0);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(ethtool_get("igntap0", ETHTOOL_GTXCSUM), 0);

  // Segmentation without checksum offload is meaningless; the kernel refuses it.
  auto bad = tap->set_offload(kTapOffloadTso4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("TAP igntap0: TUNSETOFFLOAD 0x2: Invalid argument"),
            std::string::npos)
      << bad.error().message;
  EXPECT_EQ(tap->offload(), 0u);
}

TEST_F(TapTest, FrameWrittenIsAnsweredByTheNamespaceKernel) {
  auto tap = open_in_ns("igntap0");
  ASSERT_TRUE(tap.ok()) << tap.error().message;
  ASSERT_TRUE(ns->ip({"link", "set", "igntap0", "address", "02:00:00:00:00:01", "up"}));
  ASSERT_TRUE(ns->ip({"addr", "add", "10.0.0.1/24", "dev", "igntap0"}));

  // vnet header (all zero: a complete frame), then an ARP "who has 10.0.0.1".
  std::vector<uint8_t> frame(12, 0);
  const uint8_t arp[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0,  0x02, 0x08, 0x06,
                         0,    1,    8,    0,    6,    4,    0,    1, 2, 0, 0,  0,    0,    2,
                         10,   0,    0,    2,    0,    0,    0,    0, 0, 0, 10, 0,    0,    1};
  frame.insert(frame.end(), std::begin(arp), std::end(arp));
  iovec iov{frame.data(), frame.size()};
  auto written = tap->write({&iov, 1});
  ASSERT_TRUE(written.ok()) << written.error().message;
  ASSERT_TRUE(*written);
  EXPECT_EQ(**written, frame.size());

  // The reply, among whatever else the namespace's kernel sends out of the TAP.
  std::array<uint8_t, 2048> buf;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  bool answered = false;
  while (!answered && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{tap->fd(), POLLIN, 0};
    ::poll(&pfd, 1, 100);
    auto got = tap->read(buf);
    ASSERT_TRUE(got.ok()) << got.error().message;
    if (!*got || **got < 12 + 42) continue;
    const uint8_t* eth = buf.data() + 12;
    if (eth[12] != 0x08 || eth[13] != 0x06 || eth[21] != 2) continue;  // ARP reply
    answered = true;
    EXPECT_EQ(std::memcmp(eth, "\x02\0\0\0\0\x02", 6), 0) << "to the asker";
    EXPECT_EQ(std::memcmp(eth + 22, "\x02\0\0\0\0\x01", 6), 0) << "from the TAP's MAC";
    EXPECT_EQ(std::memcmp(eth + 28, "\x0a\0\0\x01", 4), 0) << "10.0.0.1 is at";
  }
  EXPECT_TRUE(answered) << "no ARP reply from the namespace";
}

}  // namespace
}  // namespace ignition::devices
