// The MMDS end to end. First through a real virtio-net device (virtio-mmio transport, a TAP in
// a private network namespace) driven by the host-side test driver as a guest would: ARP, the
// TCP handshake and an HTTP GET answered inside the VMM, while other frames still reach the
// TAP. Then with Linux's own TCP stack as the client: curl in the namespace talks to the MMDS
// stack across a TAP, so every segment the stack sends is judged by a real kernel.
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include <gtest/gtest.h>

#include "devices/tap.hpp"
#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/net/checksum.hpp"
#include "devices/virtio/net/net.hpp"
#include "mmds/attach.hpp"
#include "mmds/frames.hpp"
#include "support/net_peer.hpp"
#include "support/process.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::mmds {
namespace {

using namespace std::chrono_literals;
using devices::Tap;
using devices::virtio::Net;
using nlohmann::json;
namespace vnet = devices::virtio::net;

constexpr MacAddress kGuestMac = {0x02, 0, 0, 0, 0, 0x02};
constexpr MacAddress kHostMac = {0x02, 0, 0, 0, 0, 0x01};
constexpr uint32_t kGuestIp = 0x0a000002;  // 10.0.0.2
constexpr uint32_t kHostIp = 0x0a000001;   // 10.0.0.1, the TAP in the namespace
constexpr uint32_t kMmdsIp = 0xa9fea9fe;

bool can_make_taps(std::string* why) {
  if (::geteuid() != 0 || ::access("/dev/net/tun", R_OK | W_OK) != 0) {
    *why = "needs root and /dev/net/tun (the TAP is made in a private netns)";
    return false;
  }
  if (!test::find_program("ip")) {
    *why = "needs iproute2's ip";
    return false;
  }
  return true;
}

json test_document() {
  std::string blob;
  for (int i = 0; blob.size() < 30000; ++i) blob += std::to_string(i) + " ";
  return {{"latest", {{"meta-data", {{"hostname", "vm-1"}, {"id", "i-123"}}}}}, {"blob", blob}};
}

// --- Through the virtio-net device ----------------------------------------------------

constexpr uint64_t kRam = 8 << 20;
constexpr uint64_t kRxBase = 0x100000;
constexpr uint64_t kTxBase = 0x500000;
constexpr uint16_t kQueue = 256;
constexpr uint32_t kRxBufSize = 2048;

struct MmdsNetDeviceTest : ::testing::Test {
  void SetUp() override {
    std::string why;
    if (!can_make_taps(&why)) GTEST_SKIP() << why;
    auto netns = test::NetNamespace::create("ign-mmds");
    ASSERT_TRUE(netns.ok()) << netns.error().message;
    ns = std::move(*netns);
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());

    std::optional<Result<Tap>> tap;
    ASSERT_TRUE(ns->in_ns([&] {
      test::quiet_ipv6();
      tap.emplace(Tap::open("ignmmds0"));
      echo.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    }));
    ASSERT_TRUE(tap->ok()) << tap->error().message;
    ASSERT_TRUE(ns->ip({"link", "set", "ignmmds0", "address", "02:00:00:00:00:01"}));
    ASSERT_TRUE(ns->ip({"addr", "add", "10.0.0.1/24", "dev", "ignmmds0"}));
    ASSERT_TRUE(ns->ip({"link", "set", "ignmmds0", "up"}));
    ASSERT_TRUE(ns->ip({"neigh", "replace", "10.0.0.2", "lladdr", "02:00:00:00:00:02", "dev",
                        "ignmmds0", "nud", "permanent"}));
    sockaddr_in addr{.sin_family = AF_INET,
                     .sin_port = htons(7777),
                     .sin_addr = {htonl(kHostIp)},
                     .sin_zero = {}};
    ASSERT_EQ(::bind(echo.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    timeval tv{.tv_sec = 5, .tv_usec = 0};
    ::setsockopt(echo.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

    config::NetworkInterface cfg;
    cfg.iface_id = "eth0";
    cfg.host_dev_name = "ignmmds0";
    cfg.guest_mac = config::MacAddress{kGuestMac};
    auto made = Net::create(cfg, std::move(tap->value()));
    ASSERT_TRUE(made.ok()) << made.error().message;
    net = made->get();
    ASSERT_TRUE(store->put(test_document()).ok());
    config::MmdsConfig mmds_cfg;
    mmds_cfg.network_interfaces = {"eth0"};
    ASSERT_TRUE(serves(mmds_cfg, net->id()));
    stack = attach(*net, store, mmds_cfg);

    auto irq = EventFd::create();
    ASSERT_TRUE(irq.ok());
    transport = std::make_unique<devices::virtio::MmioTransport>(
        std::move(made).value(), *memory, devices::IrqLine(std::move(irq).value(), 5));
    ASSERT_TRUE(transport->register_events(loop).ok());
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
    uint64_t features = devices::virtio::kFeatureVersion1 | vnet::kFeatureMrgRxbuf |
                        vnet::kFeatureCsum | vnet::kFeatureGuestCsum;
    ASSERT_EQ(driver->start(features, {kQueue, kQueue}), 15u);
    for (uint16_t i = 0; i < 64; ++i) post_rx(i);
    driver->kick(Net::kRxQueue);
  }

  void post_rx(uint16_t desc) {
    driver->post(Net::kRxQueue, {{kRxBase + uint64_t{desc} * kRxBufSize, kRxBufSize, true}}, desc);
  }

  // Sends a guest frame (virtio header first) as one TX chain.
  void send(const std::vector<uint8_t>& frame) {
    uint16_t desc = tx_next++ % kQueue;
    uint64_t gpa = kTxBase + uint64_t{desc} * 0x1000;
    ASSERT_TRUE(memory->write(gpa, frame).ok());
    driver->post(Net::kTxQueue, {{gpa, static_cast<uint32_t>(frame.size()), false}}, desc);
    driver->kick(Net::kTxQueue);
    ASSERT_TRUE(driver->take_used(Net::kTxQueue)) << "TX chain not returned";
  }

  // Frames the MMDS delivered to the guest since the last call (virtio header stripped),
  // their RX buffers posted again. Anything from the TAP's side is left out.
  std::vector<std::vector<uint8_t>> received() {
    std::vector<std::vector<uint8_t>> frames;
    while (auto used = driver->take_used(Net::kRxQueue)) {
      std::vector<uint8_t> bytes(used->second);
      EXPECT_TRUE(memory->read(kRxBase + uint64_t{used->first} * kRxBufSize, bytes).ok());
      post_rx(static_cast<uint16_t>(used->first));
      if (bytes.size() < vnet::kHdrSize + kEthernetHeaderSize ||
          !std::equal(kDefaultMmdsMac.begin(), kDefaultMmdsMac.end(),
                      bytes.begin() + vnet::kHdrSize + 6))
        continue;
      EXPECT_EQ(bytes[vnet::kNumBuffersOffset], 1) << "one buffer per MMDS frame";
      EXPECT_EQ(bytes[0], 0) << "no offload flags: checksums are complete";
      frames.emplace_back(bytes.begin() + vnet::kHdrSize, bytes.end());
    }
    driver->kick(Net::kRxQueue);
    return frames;
  }

  // A guest TCP segment to the MMDS, checksum left to the device (NEEDS_CSUM) as Linux's
  // virtio-net driver does when it negotiated VIRTIO_NET_F_CSUM.
  std::vector<uint8_t> guest_segment(uint32_t seq, uint32_t ack, uint8_t flags,
                                     std::string_view payload = {}) {
    std::vector<uint8_t> frame(vnet::kHdrSize + 1600);
    TcpFrameSpec spec;
    spec.src_mac = kGuestMac;
    spec.dst_mac = kDefaultMmdsMac;
    spec.src_ip = kGuestIp;
    spec.dst_ip = kMmdsIp;
    spec.src_port = 50000;
    spec.dst_port = 80;
    spec.seq = seq;
    spec.ack = ack;
    spec.flags = flags;
    spec.window = 65535;
    if (flags & kTcpSyn) spec.mss = 1460;
    auto eth = std::span(frame).subspan(vnet::kHdrSize);
    size_t n = write_tcp_frame(
        eth, spec, std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
    frame.resize(vnet::kHdrSize + n);
    // Replace the full checksum by the pseudo-header's partial sum.
    size_t tcp = vnet::kHdrSize + 34;
    size_t tcp_len = n - 34;
    uint8_t pseudo[12] = {0xa,
                          0,
                          0,
                          2,
                          169,
                          254,
                          169,
                          254,
                          0,
                          6,
                          static_cast<uint8_t>(tcp_len >> 8),
                          static_cast<uint8_t>(tcp_len)};
    uint16_t partial = static_cast<uint16_t>(~vnet::checksum_finish(vnet::checksum_add(0, pseudo)));
    frame[tcp + 16] = static_cast<uint8_t>(partial >> 8);
    frame[tcp + 17] = static_cast<uint8_t>(partial);
    vnet::VirtioNetHdr hdr{};
    hdr.flags = vnet::kHdrFlagNeedsCsum;
    hdr.csum_start = 34;
    hdr.csum_offset = 16;
    std::memcpy(frame.data(), &hdr, sizeof(hdr));
    return frame;
  }

  std::unique_ptr<test::NetNamespace> ns;
  std::unique_ptr<GuestMemory> memory;
  UniqueFd echo;
  test::TestRegistrar loop;
  Net* net = nullptr;
  std::shared_ptr<DataStore> store = std::make_shared<DataStore>();
  std::shared_ptr<Stack> stack;
  std::unique_ptr<devices::virtio::MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  uint16_t tx_next = 0;
};

std::optional<TcpSegment> as_tcp(const std::vector<uint8_t>& frame) {
  auto eth = parse_ethernet(frame);
  if (!eth || eth->ethertype != kEtherTypeIpv4) return std::nullopt;
  auto ip = parse_ipv4(eth->payload);
  if (!ip.ok() || ip->src != kMmdsIp || ip->dst != kGuestIp) return std::nullopt;
  auto tcp = parse_tcp(*ip);  // checks the checksum
  if (!tcp.ok()) return std::nullopt;
  return *tcp;
}

TEST_F(MmdsNetDeviceTest, GuestExchangeIsAnsweredInsideTheVmm) {
  // ARP for the MMDS's address.
  std::vector<uint8_t> arp(vnet::kHdrSize, 0);
  arp.insert(arp.end(), 6, 0xff);
  arp.insert(arp.end(), kGuestMac.begin(), kGuestMac.end());
  for (uint8_t b : {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1}) arp.push_back(b);
  arp.insert(arp.end(), kGuestMac.begin(), kGuestMac.end());
  for (uint8_t b : {10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 169, 254, 169, 254}) arp.push_back(b);
  ASSERT_NO_FATAL_FAILURE(send(arp));
  auto frames = received();
  ASSERT_EQ(frames.size(), 1u) << "the ARP reply, delivered right after the TX kick";
  ASSERT_EQ(frames[0].size(), 42u);
  EXPECT_EQ(frames[0][21], 2) << "ARP reply";
  EXPECT_TRUE(std::equal(kDefaultMmdsMac.begin(), kDefaultMmdsMac.end(), frames[0].begin() + 22));

  // The handshake.
  ASSERT_NO_FATAL_FAILURE(send(guest_segment(100, 0, kTcpSyn)));
  frames = received();
  ASSERT_EQ(frames.size(), 1u);
  auto syn_ack = as_tcp(frames[0]);
  ASSERT_TRUE(syn_ack) << "a valid TCP segment from the MMDS";
  EXPECT_EQ(syn_ack->flags, kTcpSyn | kTcpAck);
  EXPECT_EQ(syn_ack->ack, 101u);
  uint32_t next = syn_ack->seq + 1;

  // The request, in the ACK that ends the handshake.
  std::string request = "GET /latest/meta-data/hostname HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n";
  ASSERT_NO_FATAL_FAILURE(send(guest_segment(101, next, kTcpAck | kTcpPsh, request)));
  std::string response;
  for (auto& f : received()) {
    auto s = as_tcp(f);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->ack, 101u + request.size());
    if (s->seq == next) {
      response.append(s->payload.begin(), s->payload.end());
      next += static_cast<uint32_t>(s->payload.size());
    }
  }
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_EQ(response.substr(response.size() - 6), "\r\nvm-1") << response;

  // A 30 KB JSON answer spans many frames; the guest acknowledges as it goes.
  std::string json_request = "GET / HTTP/1.1\r\nAccept: application/json\r\n\r\n";
  uint32_t seq = 101 + static_cast<uint32_t>(request.size());
  ASSERT_NO_FATAL_FAILURE(send(guest_segment(seq, next, kTcpAck | kTcpPsh, json_request)));
  seq += static_cast<uint32_t>(json_request.size());
  std::string big;
  for (int round = 0; round < 100; ++round) {
    auto got = received();
    if (got.empty()) break;
    for (auto& f : got) {
      auto s = as_tcp(f);
      ASSERT_TRUE(s);
      if (s->seq != next) continue;
      big.append(s->payload.begin(), s->payload.end());
      next += static_cast<uint32_t>(s->payload.size());
    }
    ASSERT_NO_FATAL_FAILURE(send(guest_segment(seq, next, kTcpAck)));
  }
  size_t body = big.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_EQ(json::parse(big.substr(body + 4), nullptr, false), test_document());

  // None of it reached the TAP, and none of it was charged to the guest's bandwidth.
  EXPECT_EQ(net->metrics().tx_frames.load(), 0u);
  EXPECT_GE(net->metrics().tx_filtered.load(), 4u);
  EXPECT_EQ(net->metrics().rx_vmm_frames.load(), stack->metrics().tx_frames.load());
  EXPECT_EQ(stack->metrics().rx_accepted_err.load(), 0u) << "the completed checksums verified";

  // A frame for someone else still goes out through the TAP, unchanged.
  std::vector<uint8_t> udp(vnet::kHdrSize, 0);
  udp.insert(udp.end(), kHostMac.begin(), kHostMac.end());
  udp.insert(udp.end(), kGuestMac.begin(), kGuestMac.end());
  std::string payload = "to the host";
  uint16_t ip_len = static_cast<uint16_t>(28 + payload.size());
  std::vector<uint8_t> ip = {0x45,
                             0,
                             static_cast<uint8_t>(ip_len >> 8),
                             static_cast<uint8_t>(ip_len),
                             0,
                             0,
                             0x40,
                             0,
                             64,
                             17,
                             0,
                             0,
                             10,
                             0,
                             0,
                             2,
                             10,
                             0,
                             0,
                             1};
  uint16_t sum = vnet::checksum_finish(vnet::checksum_add(0, ip));
  ip[10] = static_cast<uint8_t>(sum >> 8);
  ip[11] = static_cast<uint8_t>(sum);
  udp.push_back(0x08);
  udp.push_back(0x00);
  udp.insert(udp.end(), ip.begin(), ip.end());
  uint16_t udp_len = static_cast<uint16_t>(8 + payload.size());
  std::vector<uint8_t> udp_header = {0xc3,
                                     0x50,
                                     0x1e,
                                     0x61,  // 50000 -> 7777
                                     static_cast<uint8_t>(udp_len >> 8),
                                     static_cast<uint8_t>(udp_len),
                                     0,
                                     0};  // no checksum
  udp.insert(udp.end(), udp_header.begin(), udp_header.end());
  udp.insert(udp.end(), payload.begin(), payload.end());
  ASSERT_NO_FATAL_FAILURE(send(udp));
  char buf[64];
  ssize_t n = ::recv(echo.get(), buf, sizeof(buf), 0);
  ASSERT_GT(n, 0) << "the namespace got nothing";
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), payload);
  EXPECT_EQ(net->metrics().tx_frames.load(), 1u);
}

// --- Linux's TCP stack as the client --------------------------------------------------

// Moves frames between a TAP and the MMDS stack on its own thread, as the device would.
class TapPump {
 public:
  TapPump(Tap& tap, Stack& stack) : tap_(tap), stack_(stack), thread_([this] { run(); }) {}
  ~TapPump() {
    stop_ = true;
    thread_.join();
  }
  size_t connections() const { return connections_; }

 private:
  void run() {
    std::vector<uint8_t> in(70000), out(70000);
    while (!stop_) {
      pollfd p{.fd = tap_.fd(), .events = POLLIN, .revents = 0};
      ::poll(&p, 1, 10);
      while (true) {
        auto got = tap_.read(in);
        if (!got.ok() || !*got) break;
        if (**got < vnet::kHdrSize) continue;
        vnet::VirtioNetHdr hdr;
        std::memcpy(&hdr, in.data(), sizeof(hdr));
        auto frame = std::span(in).subspan(vnet::kHdrSize, **got - vnet::kHdrSize);
        if (hdr.flags & vnet::kHdrFlagNeedsCsum)
          vnet::complete_checksum(frame, hdr.csum_start, hdr.csum_offset);
        (void)stack_.take_frame(frame);  // not for the MMDS: IPv6 chatter, dropped here
      }
      std::memset(out.data(), 0, vnet::kHdrSize);
      while (size_t n = stack_.next_frame(std::span(out).subspan(vnet::kHdrSize))) {
        iovec iov{out.data(), vnet::kHdrSize + n};
        (void)tap_.write(std::span(&iov, 1));
      }
      connections_ = stack_.connections();
    }
  }

  Tap& tap_;
  Stack& stack_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> connections_{0};
  std::thread thread_;
};

struct MmdsLinuxClientTest : ::testing::TestWithParam<config::MmdsVersion> {
  void SetUp() override {
    std::string why;
    if (!can_make_taps(&why)) GTEST_SKIP() << why;
    if (!test::find_program("curl")) GTEST_SKIP() << "needs curl";
    auto netns = test::NetNamespace::create("ign-mmds");
    ASSERT_TRUE(netns.ok()) << netns.error().message;
    ns = std::move(*netns);
    std::optional<Result<Tap>> opened;
    ASSERT_TRUE(ns->in_ns([&] {
      test::quiet_ipv6();
      opened.emplace(Tap::open("ignmmds1"));
    }));
    ASSERT_TRUE(opened->ok()) << opened->error().message;
    tap.emplace(std::move(opened->value()));
    // Let the kernel hand over partial checksums: the pump completes them as the device does.
    ASSERT_TRUE(tap->set_offload(devices::kTapOffloadCsum).ok());
    ASSERT_TRUE(ns->ip({"addr", "add", "10.0.0.1/24", "dev", "ignmmds1"}));
    ASSERT_TRUE(ns->ip({"link", "set", "ignmmds1", "up"}));
    ASSERT_TRUE(ns->ip({"route", "add", "169.254.169.254/32", "dev", "ignmmds1"}));
    ASSERT_TRUE(store->put(test_document()).ok());
    config::MmdsConfig cfg;
    cfg.network_interfaces = {"eth0"};
    cfg.version = GetParam();
    stack.emplace(store, stack_options(cfg));
    pump.emplace(*tap, *stack);
  }
  void TearDown() override { pump.reset(); }

  // Runs a shell command in the namespace; its output.
  std::string sh(const std::string& command) {
    auto r = ns->run({"sh", "-c", command});
    EXPECT_TRUE(r.ok() && r->exited_ok())
        << command << ": " << (r.ok() ? r->describe() + "\n" + r->output : "");
    return r.ok() ? r->output : "";
  }

  std::unique_ptr<test::NetNamespace> ns;
  std::optional<Tap> tap;
  std::shared_ptr<DataStore> store = std::make_shared<DataStore>();
  std::optional<Stack> stack;
  std::optional<TapPump> pump;
};

TEST_P(MmdsLinuxClientTest, CurlReadsTheMetadata) {
  const std::string url = "http://169.254.169.254";
  std::string token_header;
  if (GetParam() == config::MmdsVersion::kV2) {
    EXPECT_EQ(sh("curl -s -m 10 -o /dev/null -w '%{http_code}' " + url + "/latest/meta-data/id"),
              "401");
    std::string token = sh("curl -s -m 10 -X PUT -H 'X-metadata-token-ttl-seconds: 60' " + url +
                           "/latest/api/token");
    ASSERT_EQ(token.size(), 43u) << token;
    token_header = "-H 'X-metadata-token: " + token + "' ";
  }
  std::string curl = "curl -s -m 10 " + token_header;
  EXPECT_EQ(sh(curl + url + "/latest/meta-data/id"), "i-123");
  EXPECT_EQ(sh(curl + url + "/latest/meta-data/"), "hostname\nid");
  EXPECT_EQ(sh(curl + "--http1.0 " + url + "/latest/meta-data/hostname"), "vm-1");
  // 30 KB through the kernel's receive window and delayed ACKs.
  std::string all = sh(curl + "-H 'Accept: application/json' " + url + "/");
  EXPECT_EQ(json::parse(all, nullptr, false), test_document()) << all.size() << " bytes";
  // Several requests on one connection.
  EXPECT_EQ(sh(curl + url + "/latest/meta-data/id " + url + "/latest/meta-data/hostname"),
            "i-123vm-1");
  EXPECT_EQ(sh(curl + "-o /dev/null -w '%{http_code}' " + url + "/nothing"), "404");

  // Every connection closed cleanly: none left once the last ACKs are in.
  for (int i = 0; i < 100 && pump->connections() != 0; ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(pump->connections(), 0u);
  EXPECT_EQ(stack->metrics().rx_accepted_err.load(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Versions, MmdsLinuxClientTest,
                         ::testing::Values(config::MmdsVersion::kV1, config::MmdsVersion::kV2),
                         [](const auto& info) {
                           return std::string(config::to_string(info.param));
                         });

}  // namespace
}  // namespace ignition::mmds
