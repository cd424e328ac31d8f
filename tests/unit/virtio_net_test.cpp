// virtio-net over a TAP, driven through a real virtio-mmio transport by the host-side test
// driver, with a real kernel on the other side of the TAP: a private network namespace
// (10.0.0.1, made for the test and deleted after it) answering ARP and echoing UDP.
// Covers config space, offload negotiation, mergeable and single-chain receive, receive
// backpressure, rate limiting and its PATCH, and malformed guest chains.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>

#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/net/net.hpp"
#include "support/net_peer.hpp"
#include "support/process.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

using namespace std::chrono_literals;
using namespace net;

constexpr uint64_t kRam = 8 << 20;
constexpr uint64_t kRxBase = 0x100000;  // RX buffers
constexpr uint64_t kTxBase = 0x500000;  // TX frames
constexpr uint16_t kQueue = 256;
const char* const kTapName = "ignnet0";
constexpr std::array<uint8_t, 6> kGuestMac = {2, 0, 0, 0, 0, 2};
constexpr std::array<uint8_t, 6> kHostMac = {2, 0, 0, 0, 0, 1};
constexpr uint32_t kGuestIp = 0x0a000002, kHostIp = 0x0a000001;
constexpr uint16_t kGuestPort = 5555, kEchoPort = 7777;

// --- Frames ---------------------------------------------------------------------------

void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(x >> 8);
  v.push_back(x & 0xff);
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, x >> 16);
  put16(v, x & 0xffff);
}
uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

std::vector<uint8_t> vnet_hdr() {
  return std::vector<uint8_t>(kHdrSize, 0);
}

std::vector<uint8_t> arp_request() {
  auto f = vnet_hdr();
  f.insert(f.end(), 6, 0xff);
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put16(f, 0x0806);
  put16(f, 1);       // Ethernet
  put16(f, 0x0800);  // IPv4
  f.push_back(6);
  f.push_back(4);
  put16(f, 1);  // request
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put32(f, kGuestIp);
  f.insert(f.end(), 6, 0);
  put32(f, kHostIp);
  return f;
}

std::vector<uint8_t> udp_to_host(const std::string& payload) {
  auto f = vnet_hdr();
  f.insert(f.end(), kHostMac.begin(), kHostMac.end());
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put16(f, 0x0800);
  size_t ip = f.size();
  put16(f, 0x4500);
  put16(f, static_cast<uint16_t>(20 + 8 + payload.size()));
  put32(f, 0x00004000);  // id 0, don't fragment
  put16(f, 0x4011);      // ttl 64, UDP
  put16(f, 0);           // checksum, below
  put32(f, kGuestIp);
  put32(f, kHostIp);
  uint32_t sum = 0;
  for (size_t i = ip; i < ip + 20; i += 2) sum += get16(&f[i]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  f[ip + 10] = static_cast<uint8_t>(~sum >> 8);
  f[ip + 11] = static_cast<uint8_t>(~sum);
  put16(f, kGuestPort);
  put16(f, kEchoPort);
  put16(f, static_cast<uint16_t>(8 + payload.size()));
  put16(f, 0);  // no UDP checksum (allowed over IPv4)
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

// A received frame, virtio header first.
struct RxFrame {
  std::vector<uint8_t> bytes;
  uint16_t chains = 0;  // used entries it took

  const uint8_t* eth() const { return bytes.data() + kHdrSize; }
  VirtioNetHdr hdr() const {
    VirtioNetHdr h;
    std::memcpy(&h, bytes.data(), sizeof(h));
    return h;
  }
  bool is_arp_reply() const {
    return bytes.size() >= kHdrSize + 42 && get16(eth() + 12) == 0x0806 && get16(eth() + 20) == 2;
  }
  // The payload of a UDP datagram to the guest's port, if this is one.
  std::optional<std::string> udp_payload() const {
    if (bytes.size() < kHdrSize + 42 || get16(eth() + 12) != 0x0800 || eth()[23] != 17)
      return std::nullopt;
    const uint8_t* udp = eth() + 14 + (eth()[14] & 0xf) * 4;
    if (get16(udp + 2) != kGuestPort) return std::nullopt;
    size_t len = get16(udp + 4) - 8;
    return std::string(reinterpret_cast<const char*>(udp + 8), len);
  }
};

// --- Fixture ----------------------------------------------------------------------------

struct NetTest : ::testing::Test {
  void SetUp() override {
    if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0)
      GTEST_SKIP() << "needs root and /dev/net/tun (the TAP is made in a private netns)";
    if (!test::find_program("ip")) GTEST_SKIP() << "needs iproute2's ip";
    auto made = test::NetNamespace::create("ign-test");
    ASSERT_TRUE(made.ok()) << made.error().message;
    ns = std::move(*made);
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
  }

  static config::NetworkInterface default_config() {
    config::NetworkInterface cfg;
    cfg.iface_id = "eth0";
    cfg.host_dev_name = kTapName;
    cfg.guest_mac = config::MacAddress{kGuestMac};
    return cfg;
  }

  // The TAP, made inside the namespace as 10.0.0.1 (MTU 65000, so big frames stay whole),
  // and the device over it behind a transport.
  void make_device(const config::NetworkInterface& cfg = default_config()) {
    std::optional<Result<Tap>> tap;
    ASSERT_TRUE(ns->in_ns([&] {
      test::quiet_ipv6();
      tap.emplace(Tap::open(cfg.host_dev_name));
      echo.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      ethtool_sock.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }));
    ASSERT_TRUE(tap->ok()) << tap->error().message;
    ASSERT_TRUE(ns->ip({"link", "set", kTapName, "address", "02:00:00:00:00:01", "mtu", "65000"}));
    ASSERT_TRUE(ns->ip({"addr", "add", "10.0.0.1/24", "dev", kTapName}));
    ASSERT_TRUE(ns->ip({"link", "set", kTapName, "up"}));
    ASSERT_TRUE(ns->ip({"neigh", "replace", "10.0.0.2", "lladdr", "02:00:00:00:00:02", "dev",
                        kTapName, "nud", "permanent"}));
    sockaddr_in addr{.sin_family = AF_INET,
                     .sin_port = htons(kEchoPort),
                     .sin_addr = {htonl(kHostIp)},
                     .sin_zero = {}};
    ASSERT_EQ(::bind(echo.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << errno_string();
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(echo.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    auto made = Net::create(cfg, std::move(tap->value()));
    ASSERT_TRUE(made.ok()) << made.error().message;
    net = made->get();
    auto irq_fd = EventFd::create();
    ASSERT_TRUE(irq_fd.ok());
    irq_probe.reset(::dup(irq_fd->fd()));
    transport = std::make_unique<MmioTransport>(std::move(made).value(), *memory,
                                                IrqLine(std::move(irq_fd).value(), 5));
    ASSERT_TRUE(transport->register_events(loop).ok());
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
  }

  static constexpr uint64_t kOffloads = kFeatureCsum | kFeatureGuestCsum | kFeatureGuestTso4 |
                                        kFeatureGuestTso6 | kFeatureHostTso4 | kFeatureHostTso6;

  void start(uint64_t features) {
    uint32_t status = driver->start(kFeatureVersion1 | features, {kQueue, kQueue});
    ASSERT_EQ(status, 15u) << "device did not start";
  }

  bool needs_reset() { return driver->read_reg(0x70) & kStatusNeedsReset; }

  // Posts `count` single-buffer RX chains of `size` bytes from descriptor `first`.
  void post_rx(uint16_t first, uint16_t count, uint32_t size, bool kick = true) {
    for (uint16_t i = first; i < first + count; ++i)
      driver->post(Net::kRxQueue, {{rx_gpa(i, size), size, true}}, i);
    if (kick) driver->kick(Net::kRxQueue);
  }
  static uint64_t rx_gpa(uint16_t desc, uint32_t size) { return kRxBase + uint64_t{desc} * size; }

  // Sends one frame as a single-buffer TX chain; returns its used length (nullopt: none).
  std::optional<uint32_t> send(const std::vector<uint8_t>& frame) {
    uint16_t desc = tx_next++ % kQueue;
    uint64_t gpa = kTxBase + uint64_t{desc} * 0x1000;
    EXPECT_LE(frame.size(), 0x1000u);
    EXPECT_TRUE(memory->write(gpa, frame).ok());
    driver->post(Net::kTxQueue, {{gpa, static_cast<uint32_t>(frame.size()), false}}, desc);
    driver->kick(Net::kTxQueue);
    auto used = driver->take_used(Net::kTxQueue);
    if (!used) return std::nullopt;
    EXPECT_EQ(used->first, desc);
    return used->second;
  }

  // The next frame in the RX queue, gathering its chains (buffer size `size`).
  std::optional<RxFrame> take_frame(uint32_t size) {
    auto first = driver->take_used(Net::kRxQueue);
    if (!first) return std::nullopt;
    RxFrame frame;
    auto append = [&](std::pair<uint32_t, uint32_t> used) {
      std::vector<uint8_t> part(used.second);
      EXPECT_TRUE(memory->read(rx_gpa(static_cast<uint16_t>(used.first), size), part).ok());
      frame.bytes.insert(frame.bytes.end(), part.begin(), part.end());
      frame.chains++;
    };
    append(*first);
    if (frame.bytes.size() < kHdrSize) return frame;
    for (uint16_t i = 1; i < frame.hdr().num_buffers; ++i) {
      auto more = driver->take_used(Net::kRxQueue);
      EXPECT_TRUE(more) << "chain " << i << " of " << frame.hdr().num_buffers << " missing";
      if (!more) break;
      append(*more);
    }
    return frame;
  }

  // Pumps the loop until a frame matching `want` arrives (others are skipped).
  std::optional<RxFrame> wait_frame(uint32_t size, const std::function<bool(const RxFrame&)>& want,
                                    std::chrono::milliseconds limit = 5s) {
    std::optional<RxFrame> found;
    loop.pump_until(
        [&] {
          while (auto f = take_frame(size)) {
            if (want(*f)) {
              found = std::move(f);
              return true;
            }
          }
          return false;
        },
        limit);
    return found;
  }

  // Sends `payload` from the namespace to the guest's UDP port.
  void host_sends(const std::string& payload) {
    sockaddr_in to{.sin_family = AF_INET,
                   .sin_port = htons(kGuestPort),
                   .sin_addr = {htonl(kGuestIp)},
                   .sin_zero = {}};
    ASSERT_EQ(::sendto(echo.get(), payload.data(), payload.size(), 0,
                       reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(payload.size()))
        << errno_string();
  }

  // What the namespace received on the echo port, and echoes it back.
  std::string host_echoes() {
    char buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n =
        ::recvfrom(echo.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return "<nothing: " + errno_string() + ">";
    EXPECT_EQ(::sendto(echo.get(), buf, n, 0, reinterpret_cast<sockaddr*>(&from), len), n);
    return std::string(buf, n);
  }

  int ethtool_get(uint32_t cmd) {
    ethtool_value value{.cmd = cmd, .data = 0};
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, kTapName, IFNAMSIZ - 1);
    ifr.ifr_data = reinterpret_cast<char*>(&value);
    if (::ioctl(ethtool_sock.get(), SIOCETHTOOL, &ifr) < 0) return -1;
    return value.data ? 1 : 0;
  }

  uint64_t irqs() {
    uint64_t n = 0;
    return ::read(irq_probe.get(), &n, sizeof(n)) == sizeof(n) ? n : 0;
  }

  std::unique_ptr<test::NetNamespace> ns;  // first in, last out: outlives the TAP and sockets
  std::unique_ptr<GuestMemory> memory;
  UniqueFd echo, ethtool_sock, irq_probe;
  test::TestRegistrar loop;
  Net* net = nullptr;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  uint16_t tx_next = 0;
};

// --- Tests ------------------------------------------------------------------------------

TEST_F(NetTest, OffersFirecrackersFeaturesAndShowsTheMacAndMtu) {
  auto cfg = default_config();
  cfg.mtu = 9000;
  ASSERT_NO_FATAL_FAILURE(make_device(cfg));
  EXPECT_EQ(driver->read_reg(0x008), 1u) << "device id: net";
  uint64_t features = driver->device_features();
  for (uint64_t f : {kFeatureMac, kFeatureMtu, kFeatureMrgRxbuf, kFeatureCsum, kFeatureGuestCsum,
                     kFeatureGuestTso4, kFeatureGuestTso6, kFeatureGuestUfo, kFeatureHostTso4,
                     kFeatureHostTso6, kFeatureHostUfo, kFeatureRingEventIdx, kFeatureVersion1})
    EXPECT_TRUE(features & f) << std::hex << f;
  EXPECT_FALSE(features & kFeatureRingIndirectDesc);
  driver->write_reg(0x30, 0);
  EXPECT_EQ(driver->read_reg(0x34), Net::kQueueSize);
  driver->write_reg(0x30, 1);
  EXPECT_EQ(driver->read_reg(0x34), Net::kQueueSize);
  driver->write_reg(0x30, 2);
  EXPECT_EQ(driver->read_reg(0x34), 0u) << "rx and tx only";

  // Byte by byte, as drivers read the MAC.
  uint8_t config[16];
  for (size_t i = 0; i < sizeof(config); ++i) transport->read(0x100 + i, {&config[i], 1});
  EXPECT_EQ(std::memcmp(config, kGuestMac.data(), 6), 0);
  uint16_t mtu;
  std::memcpy(&mtu, config + 10, 2);
  EXPECT_EQ(mtu, 9000);
  EXPECT_EQ(config[12] | config[13] | config[14] | config[15], 0) << "past the end reads 0";
  // The MAC is read-only.
  uint8_t zero = 0;
  transport->write(0x100, {&zero, 1});
  transport->read(0x100, {config, 1});
  EXPECT_EQ(config[0], kGuestMac[0]);
}

TEST_F(NetTest, WithoutAGuestMacTheDriverPicksOne) {
  auto cfg = default_config();
  cfg.guest_mac.reset();
  ASSERT_NO_FATAL_FAILURE(make_device(cfg));
  uint64_t features = driver->device_features();
  EXPECT_FALSE(features & kFeatureMac);
  EXPECT_FALSE(features & kFeatureMtu);
}

TEST_F(NetTest, CreateReportsTheTapThatFailed) {
  auto cfg = default_config();
  cfg.host_dev_name = "lo";
  // Keep only the outcome: gcc 12 -O2 misreads a moved-from Result<unique_ptr> here.
  bool created = true;
  std::string message;
  ASSERT_TRUE(ns->in_ns([&] {
    auto made = Net::create(cfg);
    created = made.ok();
    if (!created) message = made.error().message;
  }));
  ASSERT_FALSE(created);
  EXPECT_NE(message.find("network interface eth0: TAP lo: TUNSETIFF"), std::string::npos)
      << message;
}

TEST_F(NetTest, AckedReceiveOffloadsBecomeTapOffloads) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  EXPECT_EQ(net->tap().offload(), kTapOffloadCsum | kTapOffloadTso4 | kTapOffloadTso6);
  EXPECT_EQ(ethtool_get(ETHTOOL_GTXCSUM), 1);
  EXPECT_EQ(ethtool_get(ETHTOOL_GTSO), 1);
  // The kernel now hands over partial checksums: the header says so.
  post_rx(0, 8, 4096);
  host_sends("partial");
  auto frame = wait_frame(4096, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->hdr().flags & kHdrFlagNeedsCsum, kHdrFlagNeedsCsum);

  // A driver that takes no offloads: checksums done, nothing segmented.
  ASSERT_NO_FATAL_FAILURE(start(kFeatureMrgRxbuf));
  EXPECT_EQ(net->tap().offload(), 0u);
  EXPECT_EQ(ethtool_get(ETHTOOL_GTXCSUM), 0);
  EXPECT_EQ(ethtool_get(ETHTOOL_GTSO), 0);
  post_rx(0, 8, 4096);
  host_sends("complete");
  frame = wait_frame(4096, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->udp_payload(), "complete");
  EXPECT_EQ(frame->hdr().flags, 0);

  // TSO without checksum offload breaks a spec dependency; the TAP gets neither.
  ASSERT_NO_FATAL_FAILURE(start(kFeatureGuestTso4));
  EXPECT_EQ(net->tap().offload(), 0u);
}

TEST_F(NetTest, ArpRequestIsAnsweredByTheNamespaceKernel) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf | kFeatureRingEventIdx));
  post_rx(0, 16, 2048);
  auto used = send(arp_request());
  ASSERT_TRUE(used);
  EXPECT_EQ(*used, 0u) << "TX chains are returned with nothing written";
  auto reply = wait_frame(2048, [](const RxFrame& f) { return f.is_arp_reply(); });
  ASSERT_TRUE(reply) << "no ARP reply";
  EXPECT_EQ(reply->hdr().num_buffers, 1);
  EXPECT_EQ(std::memcmp(reply->eth(), kGuestMac.data(), 6), 0) << "to the guest";
  EXPECT_EQ(std::memcmp(reply->eth() + 22, kHostMac.data(), 6), 0) << "the TAP's MAC";
  EXPECT_EQ(std::memcmp(reply->eth() + 28, "\x0a\0\0\x01", 4), 0) << "for 10.0.0.1";
  EXPECT_GE(irqs(), 2u) << "TX completion and RX";
  EXPECT_EQ(net->metrics().tx_frames.load(), 1u);
  EXPECT_EQ(net->metrics().tx_bytes.load(), 42u);
  EXPECT_GE(net->metrics().rx_frames.load(), 1u);
  EXPECT_EQ(net->metrics().tx_spoofed_mac.load(), 0u);
  EXPECT_FALSE(needs_reset());
}

class NetEchoTest : public NetTest, public ::testing::WithParamInterface<bool> {};

TEST_P(NetEchoTest, UdpDatagramIsEchoedBackByTheNamespace) {
  bool mergeable = GetParam();
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | (mergeable ? kFeatureMrgRxbuf : 0)));
  post_rx(0, 16, 2048);
  ASSERT_TRUE(send(udp_to_host("hello from the guest")));
  EXPECT_EQ(host_echoes(), "hello from the guest");
  auto echo = wait_frame(2048, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(echo) << "no echo";
  EXPECT_EQ(echo->udp_payload(), "hello from the guest");
  EXPECT_EQ(echo->hdr().num_buffers, 1) << "set even without MRG_RXBUF (virtio 1.x)";
  EXPECT_EQ(echo->chains, 1);
  EXPECT_EQ(std::memcmp(echo->eth() + 6, kHostMac.data(), 6), 0);
}

INSTANTIATE_TEST_SUITE_P(Mergeable, NetEchoTest, ::testing::Bool());

TEST_F(NetTest, MergeableBuffersCarryALargeFrameAcrossChains) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, 16, 4096);
  std::string payload(10000, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 26);
  host_sends(payload);
  auto frame = wait_frame(4096, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(frame);
  // 12 + 14 + 20 + 8 + 10000 bytes in 4 KiB chains.
  EXPECT_EQ(frame->bytes.size(), 10054u);
  EXPECT_EQ(frame->hdr().num_buffers, 3);
  EXPECT_EQ(frame->chains, 3);
  EXPECT_EQ(frame->udp_payload(), payload);
  EXPECT_EQ(net->metrics().rx_bytes.load(), 10042u);
}

TEST_F(NetTest, WithoutMergeableBuffersAFrameTooBigForAChainIsDropped) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kFeatureCsum));
  post_rx(0, 1, 2048);
  host_sends(std::string(10000, 'x'));
  ASSERT_TRUE(loop.pump_until([&] { return net->metrics().rx_dropped.load() == 1; }));
  EXPECT_FALSE(driver->take_used(Net::kRxQueue)) << "the chain is kept for the next frame";
  host_sends("small");
  auto frame = wait_frame(2048, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->udp_payload(), "small");
  EXPECT_EQ(frame->hdr().num_buffers, 1);
  EXPECT_FALSE(needs_reset());
}

TEST_F(NetTest, AFrameBiggerThanAWholeRingOfChainsIsDropped) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, kQueue, 32);  // 8 KiB in all: waiting for more buffers would wait forever
  host_sends(std::string(10000, 'x'));
  ASSERT_TRUE(loop.pump_until([&] { return net->metrics().rx_dropped.load() == 1; }));
  EXPECT_EQ(driver->used_idx(Net::kRxQueue), 0) << "the chains are all kept";
  host_sends("fits");
  auto frame = wait_frame(32, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(frame);
  EXPECT_EQ(frame->udp_payload(), "fits");
  EXPECT_EQ(frame->hdr().num_buffers, 2) << "12 + 46 bytes in 32-byte chains";
  EXPECT_FALSE(needs_reset());
}

TEST_F(NetTest, WithoutRxBuffersFramesWaitInTheTapUntilTheDriverKicks) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf | kFeatureRingEventIdx));
  for (int i = 0; i < 5; ++i) host_sends("frame-" + std::to_string(i));
  ASSERT_TRUE(loop.pump_until([&] { return net->metrics().rx_no_buffers.load() >= 1; }));
  // Nothing more happens: the TAP is not read (and not polled in a loop) meanwhile.
  int before = loop.handled();
  loop.pump_for(200ms);
  EXPECT_LE(loop.handled() - before, 1);
  EXPECT_EQ(net->metrics().rx_frames.load(), 0u);
  EXPECT_EQ(net->metrics().rx_dropped.load(), 0u);
  EXPECT_EQ(driver->used_idx(Net::kRxQueue), 0);

  // Two buffers: two frames, in order; the rest keep waiting.
  post_rx(0, 2, 2048);
  std::vector<std::string> got;
  for (int i = 0; i < 2; ++i) {
    auto f = wait_frame(
        2048, [](const RxFrame& f) { return f.udp_payload().has_value(); }, 1s);
    ASSERT_TRUE(f);
    got.push_back(*f->udp_payload());
  }
  EXPECT_EQ(net->metrics().rx_frames.load(), 2u);
  post_rx(2, 8, 2048);
  for (int i = 2; i < 5; ++i) {
    auto f = wait_frame(
        2048, [](const RxFrame& f) { return f.udp_payload().has_value(); }, 1s);
    ASSERT_TRUE(f);
    got.push_back(*f->udp_payload());
  }
  EXPECT_EQ(got, (std::vector<std::string>{"frame-0", "frame-1", "frame-2", "frame-3", "frame-4"}));
  EXPECT_EQ(net->metrics().rx_dropped.load(), 0u);
}

TEST_F(NetTest, RxChainsTooSmallForAHeaderAreReturnedEmpty) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  driver->post(Net::kRxQueue, {{rx_gpa(0, 2048), 4, true}}, 0);     // too small
  driver->post(Net::kRxQueue, {{rx_gpa(1, 2048), 64, false}}, 1);   // read-only
  driver->post(Net::kRxQueue, {{rx_gpa(2, 2048), 2048, true}}, 2);  // fine
  driver->kick(Net::kRxQueue);
  host_sends("after the bad ones");
  std::map<uint32_t, uint32_t> used;
  ASSERT_TRUE(loop.pump_until([&] {
    while (auto u = driver->take_used(Net::kRxQueue)) used[u->first] = u->second;
    return used.size() == 3;
  }));
  EXPECT_EQ(used[0], 0u);
  EXPECT_EQ(used[1], 0u);
  EXPECT_EQ(used[2], kHdrSize + 14 + 20 + 8 + 18);
  EXPECT_EQ(net->metrics().rx_bad_chains.load(), 2u);
  EXPECT_FALSE(needs_reset());
}

TEST_F(NetTest, MalformedTxChainsAreDroppedAndTheDeviceCarriesOn) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, 16, 2048);
  auto arp = arp_request();
  ASSERT_TRUE(memory->write(kTxBase, arp).ok());
  auto bad_gso = arp;
  bad_gso[1] = 0x55;  // no such gso_type: the kernel refuses the frame
  ASSERT_TRUE(memory->write(kTxBase + 0x1000, bad_gso).ok());

  struct Case {
    const char* name;
    std::vector<test::DriverBuffer> chain;
    NetMetrics::Counter NetMetrics::*counter;
  };
  std::vector<Case> cases = {
      {"only device-writable buffers", {{kTxBase, 64, true}}, &NetMetrics::tx_malformed},
      {"shorter than the virtio header", {{kTxBase, 8, false}}, &NetMetrics::tx_malformed},
      {"empty", {{kTxBase, 0, false}}, &NetMetrics::tx_malformed},
      {"longer than 64 KiB + headers",
       {{kTxBase, 0x10000, false}, {kTxBase + 0x10000, 0x100, false}},
       &NetMetrics::tx_malformed},
      {"a writable buffer after the frame",
       {{kTxBase, static_cast<uint32_t>(arp.size()), false}, {kTxBase + 0x2000, 64, true}},
       &NetMetrics::tx_malformed},
      {"a GSO type the TAP refuses",
       {{kTxBase + 0x1000, static_cast<uint32_t>(bad_gso.size()), false}},
       &NetMetrics::tx_tap_errors},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    uint64_t before = (net->metrics().*c.counter).load();
    driver->post(Net::kTxQueue, c.chain, 0);
    driver->kick(Net::kTxQueue);
    auto used = driver->take_used(Net::kTxQueue);
    ASSERT_TRUE(used) << "the chain must come back";
    EXPECT_EQ(used->first, 0u);
    EXPECT_EQ(used->second, 0u);
    EXPECT_EQ((net->metrics().*c.counter).load(), before + 1);
    EXPECT_FALSE(needs_reset());
  }
  EXPECT_EQ(net->metrics().tx_frames.load(), 0u);

  // A frame split over many small buffers is fine.
  std::vector<test::DriverBuffer> pieces;
  for (size_t off = 0; off < arp.size(); off += 5)
    pieces.push_back(
        {kTxBase + off, static_cast<uint32_t>(std::min<size_t>(5, arp.size() - off)), false});
  driver->post(Net::kTxQueue, pieces, 10);
  driver->kick(Net::kTxQueue);
  ASSERT_TRUE(driver->take_used(Net::kTxQueue));
  EXPECT_EQ(net->metrics().tx_frames.load(), 1u);
  EXPECT_TRUE(wait_frame(2048, [](const RxFrame& f) { return f.is_arp_reply(); }))
      << "the device still works";
}

TEST_F(NetTest, SpoofedSourceMacIsCounted) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads));
  auto frame = arp_request();
  frame[kHdrSize + 6 + 5] = 0x99;
  ASSERT_TRUE(send(frame));
  EXPECT_EQ(net->metrics().tx_spoofed_mac.load(), 1u);
  EXPECT_EQ(net->metrics().tx_frames.load(), 1u) << "counted, not dropped (as Firecracker)";
}

TEST_F(NetTest, TxFilterCanConsumeFrames) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  std::vector<std::vector<uint8_t>> seen;
  net->set_tx_filter([&](std::span<const uint8_t> frame) {
    seen.emplace_back(frame.begin(), frame.end());
    return get16(frame.data() + 12) == 0x0806;  // take ARP, pass the rest
  });
  ASSERT_NO_FATAL_FAILURE(start(kOffloads));
  auto arp = arp_request();
  ASSERT_TRUE(send(arp));
  ASSERT_TRUE(send(udp_to_host("passes")));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::vector<uint8_t>(arp.begin() + kHdrSize, arp.end()));
  EXPECT_EQ(net->metrics().tx_filtered.load(), 1u);
  EXPECT_EQ(net->metrics().tx_frames.load(), 1u);
  EXPECT_EQ(host_echoes(), "passes");
}

TEST_F(NetTest, BrokenRingNeedsResetAndTheDeviceRecovers) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, 16, 2048);
  driver->post(Net::kTxQueue, {{kRam - 8, 64, false}}, 0);  // outside guest RAM
  driver->kick(Net::kTxQueue);
  EXPECT_TRUE(needs_reset());
  // TAP events do not reach a broken device.
  host_sends("ignored");
  loop.pump(100ms);
  EXPECT_EQ(driver->used_idx(Net::kRxQueue), 0);

  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  EXPECT_FALSE(needs_reset());
  post_rx(0, 16, 2048);
  ASSERT_TRUE(send(arp_request()));
  EXPECT_TRUE(wait_frame(2048, [](const RxFrame& f) { return f.is_arp_reply(); }));
}

TEST_F(NetTest, RandomGarbageNeverCrashesTheDevice) {
  ASSERT_NO_FATAL_FAILURE(make_device());
  std::mt19937 rng(1);
  auto pick = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng); };
  std::vector<uint8_t> noise(0x400000);
  for (auto& b : noise) b = static_cast<uint8_t>(pick(256));
  for (int round = 0; round < 60; ++round) {
    SCOPED_TRACE(round);
    // Even rounds: broken rings. Odd rounds: well-formed rings whose chains are hostile
    // (random sizes and directions, random bytes for headers and frames).
    bool broken_rings = round % 2 == 0;
    ASSERT_NO_FATAL_FAILURE(start(kOffloads | (round % 4 < 2 ? kFeatureMrgRxbuf : 0)));
    ASSERT_TRUE(memory->write(kRxBase, noise).ok());
    for (uint16_t q : {Net::kRxQueue, Net::kTxQueue}) {
      uint16_t d = 0;
      while (d < 64) {
        uint16_t head = d;
        size_t length = std::min<size_t>(1 + pick(4), 64 - d);
        size_t readable = pick(3) == 0 ? pick(length + 1) : (pick(2) ? length : 0);
        for (size_t i = 0; i < length; ++i, ++d) {
          uint64_t addr = kRxBase + pick(0x3f0000);
          auto len = static_cast<uint32_t>(pick(8) ? pick(0x3000) : pick(0x10000));
          uint16_t flags = (i + 1 < length ? 1 : 0) | (i >= readable ? 2 : 0);
          uint16_t next = d + 1;
          if (broken_rings) {
            if (!pick(16)) addr = kRam - pick(0x100);
            if (!pick(16)) flags = static_cast<uint16_t>(pick(8));
            if (!pick(16)) next = static_cast<uint16_t>(pick(300));
          }
          driver->write_descriptor(q, d, addr, len, flags, next);
        }
        driver->publish(q, head);
      }
      driver->kick(q);
    }
    for (int i = 0; i < 3; ++i) host_sends(std::string(pick(12000) + 1, 'g'));
    loop.pump_for(5ms);
    driver->kick(Net::kTxQueue);
    driver->kick(Net::kRxQueue);
    if (!broken_rings) {
      EXPECT_FALSE(needs_reset()) << "well-formed rings never need a reset";
    }
  }
  EXPECT_GT(net->metrics().tx_malformed.load() + net->metrics().tx_tap_errors.load(), 0u);
  EXPECT_GT(net->metrics().rx_frames.load(), 0u);
  // Whatever happened, a reset brings back a working device.
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, 16, 2048);
  ASSERT_TRUE(send(arp_request()));
  EXPECT_TRUE(wait_frame(2048, [](const RxFrame& f) { return f.is_arp_reply(); }));
}

config::RateLimiter one_op_per_hour() {
  config::RateLimiter limiter;
  limiter.ops = config::TokenBucket{.size = 1, .one_time_burst = {}, .refill_time = 3'600'000};
  return limiter;
}

config::RateLimiter unlimited() {
  config::RateLimiter limiter;
  limiter.ops = config::TokenBucket{};  // present and disabled: lifts the limit
  return limiter;
}

TEST_F(NetTest, TxRateLimiterHoldsFramesUntilPatched) {
  auto cfg = default_config();
  cfg.tx_rate_limiter = one_op_per_hour();
  ASSERT_NO_FATAL_FAILURE(make_device(cfg));
  ASSERT_NO_FATAL_FAILURE(start(kOffloads));
  auto arp = arp_request();
  ASSERT_TRUE(memory->write(kTxBase, arp).ok());
  for (uint16_t i = 0; i < 3; ++i)
    driver->post(Net::kTxQueue, {{kTxBase, static_cast<uint32_t>(arp.size()), false}}, i);
  driver->kick(Net::kTxQueue);
  EXPECT_EQ(driver->used_idx(Net::kTxQueue), 1) << "one op allowed, the rest wait";
  EXPECT_EQ(net->metrics().tx_rate_limited.load(), 1u);
  loop.pump(100ms);
  EXPECT_EQ(driver->used_idx(Net::kTxQueue), 1);

  net->update_rate_limiters(std::nullopt, unlimited());
  EXPECT_FALSE(net->tx_rate_limiter().ops) << "limit lifted";
  ASSERT_TRUE(loop.pump_until([&] { return driver->used_idx(Net::kTxQueue) == 3; }))
      << "the waiting frames go once the limit is lifted";
  EXPECT_EQ(net->metrics().tx_frames.load(), 3u);
}

TEST_F(NetTest, RxRateLimiterHoldsFramesUntilPatched) {
  auto cfg = default_config();
  cfg.rx_rate_limiter = one_op_per_hour();
  ASSERT_NO_FATAL_FAILURE(make_device(cfg));
  ASSERT_NO_FATAL_FAILURE(start(kOffloads | kFeatureMrgRxbuf));
  post_rx(0, 16, 2048);
  host_sends("first");
  host_sends("second");
  ASSERT_TRUE(loop.pump_until([&] { return net->metrics().rx_rate_limited.load() >= 1; }));
  EXPECT_EQ(net->metrics().rx_frames.load(), 1u);
  auto first = take_frame(2048);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->udp_payload(), "first");

  net->update_rate_limiters(unlimited(), std::nullopt);
  auto second = wait_frame(2048, [](const RxFrame& f) { return f.udp_payload().has_value(); });
  ASSERT_TRUE(second);
  EXPECT_EQ(second->udp_payload(), "second");
}

}  // namespace
}  // namespace ignition::devices::virtio
