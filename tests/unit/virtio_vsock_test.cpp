// virtio-vsock through a real virtio-mmio transport, with the test acting as the guest
// driver and real Unix sockets in a temporary directory as the host side: both
// connection directions, data and credit flow control, shutdown, resets, and a driver
// that breaks the protocol.
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "devices/virtio/mmio_transport.hpp"
#include "devices/virtio/vsock/vsock.hpp"
#include "support/test_registrar.hpp"
#include "support/virtio_driver.hpp"

namespace ignition::devices::virtio {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kGuestCid = 3;
constexpr uint64_t kHostCid = 2;
constexpr uint32_t kHeader = 44;
constexpr uint32_t kFirstHostPort = 1u << 30;
enum : uint16_t { kRequest = 1, kResponse, kRst, kShutdown, kRw, kCreditUpdate, kCreditRequest };
constexpr uint32_t kShutRcv = 1, kShutSend = 2;

// The test's own view of the wire format, written from the spec's field offsets so a
// layout mistake in the device is not mirrored here.
struct Hdr {
  uint64_t src_cid = kGuestCid;
  uint64_t dst_cid = kHostCid;
  uint32_t src_port = 0;
  uint32_t dst_port = 0;
  uint32_t len = 0;
  uint16_t type = 1;
  uint16_t op = 0;
  uint32_t flags = 0;
  uint32_t buf_alloc = 64 * 1024;
  uint32_t fwd_cnt = 0;
};

template <typename T>
void put(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof(T));
}
template <typename T>
T get(const uint8_t* b, size_t off) {
  T v;
  std::memcpy(&v, b + off, sizeof(T));
  return v;
}

std::vector<uint8_t> encode(const Hdr& h) {
  std::vector<uint8_t> b(kHeader);
  put(b, 0, h.src_cid);
  put(b, 8, h.dst_cid);
  put(b, 16, h.src_port);
  put(b, 20, h.dst_port);
  put(b, 24, h.len);
  put(b, 28, h.type);
  put(b, 30, h.op);
  put(b, 32, h.flags);
  put(b, 36, h.buf_alloc);
  put(b, 40, h.fwd_cnt);
  return b;
}

Hdr decode(const uint8_t* b) {
  return {get<uint64_t>(b, 0),  get<uint64_t>(b, 8),  get<uint32_t>(b, 16), get<uint32_t>(b, 20),
          get<uint32_t>(b, 24), get<uint16_t>(b, 28), get<uint16_t>(b, 30), get<uint32_t>(b, 32),
          get<uint32_t>(b, 36), get<uint32_t>(b, 40)};
}

struct Pkt {
  Hdr hdr;
  std::vector<uint8_t> data;
};

std::vector<uint8_t> bytes(std::string_view s) {
  return {s.begin(), s.end()};
}

std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

// Host-side Unix socket helpers.
UniqueFd connect_to(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) return UniqueFd();
  return fd;
}

UniqueFd listen_on(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) return UniqueFd();
  if (::listen(fd.get(), 16) < 0) return UniqueFd();
  return fd;
}

// Accepts within `timeout`, or an invalid fd.
UniqueFd accept_from(int listener, std::chrono::milliseconds timeout = 1000ms) {
  pollfd p{listener, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
  return UniqueFd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
}

void send_all(int fd, std::string_view s) {
  ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// What is readable on `fd` right now (non-blocking).
std::string read_now(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

class VsockTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRam = 8 << 20;
  static constexpr uint16_t kRxSize = 64, kTxSize = 64, kEvSize = 4;
  static constexpr uint64_t kRxBase = 0x100000;
  static constexpr uint32_t kRxBufLen = kHeader + 4096;
  static constexpr uint64_t kTxBase = 0x300000;
  static constexpr uint64_t kEvBase = 0x3f0000;

  void SetUp() override {
    char tmpl[] = "/tmp/ign-vsock-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir = tmpl;
    uds = dir + "/v.sock";
    auto mem = GuestMemory::create_anonymous({{0, kRam}});
    ASSERT_TRUE(mem.ok());
    memory = std::make_unique<GuestMemory>(std::move(mem).value());
  }
  void TearDown() override {
    transport.reset();
    std::filesystem::remove_all(dir);
  }

  // Creates the device and starts the driver with rx buffers posted.
  void start(const vsock::Limits& limits = {}) {
    auto dev = Vsock::create({static_cast<uint32_t>(kGuestCid), uds}, limits);
    ASSERT_TRUE(dev.ok()) << dev.error().message;
    vsock = dev->get();
    auto irq = EventFd::create();
    ASSERT_TRUE(irq.ok());
    transport = std::make_unique<MmioTransport>(std::move(dev).value(), *memory,
                                                IrqLine(std::move(irq).value(), 5));
    ASSERT_TRUE(transport->register_events(registrar).ok());
    driver = std::make_unique<test::VirtioTestDriver>(*transport, *memory);
    ASSERT_EQ(driver->start(kFeatureVersion1, {kRxSize, kTxSize, kEvSize}), 15u);
    for (uint16_t i = 0; i < kRxSize; ++i) post_rx(i);
    driver->kick(0);
  }

  void post_rx(uint16_t i) { driver->post(0, {{kRxBase + i * kRxBufLen, kRxBufLen, true}}, i); }

  // Sends one packet on the tx queue (a single readable descriptor).
  void send(Hdr h, const std::vector<uint8_t>& data = {}) {
    h.len = static_cast<uint32_t>(data.size());
    send_raw(h, data, kHeader + h.len);
  }
  // Sends header+data in a descriptor of `desc_len` bytes, whatever the header says.
  void send_raw(const Hdr& h, const std::vector<uint8_t>& data, uint32_t desc_len) {
    std::vector<uint8_t> buf = encode(h);
    buf.insert(buf.end(), data.begin(), data.end());
    ASSERT_TRUE(memory->write(kTxBase, buf).ok());
    driver->post(1, {{kTxBase, desc_len, false}}, 0);
    driver->kick(1);
    auto used = driver->take_used(1);
    ASSERT_TRUE(used) << "the device consumes every tx packet at once";
  }

  // Moves every packet the device delivered into `inbox` and gives the buffers back.
  void collect() {
    bool reposted = false;
    while (auto used = driver->take_used(0)) {
      uint16_t id = static_cast<uint16_t>(used->first);
      uint64_t gpa = kRxBase + id * kRxBufLen;
      uint32_t len = used->second;
      if (len >= kHeader) {
        std::vector<uint8_t> raw(len);
        EXPECT_TRUE(memory->read(gpa, raw).ok());
        Pkt p{decode(raw.data()), {raw.begin() + kHeader, raw.end()}};
        EXPECT_EQ(p.hdr.len, len - kHeader) << "used length is header + payload";
        inbox.push_back(std::move(p));
      }
      post_rx(id);
      reposted = true;
    }
    if (reposted) driver->kick(0);
  }
  // Pumps host events and collects until `done` or the timeout.
  bool pump_until(const std::function<bool()>& done, std::chrono::milliseconds timeout = 2000ms) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (true) {
      collect();
      if (done()) return true;
      if (std::chrono::steady_clock::now() >= until) return false;
      registrar.pump(5ms);
    }
  }
  // The next packet for guest port `port`, waiting for it.
  std::optional<Pkt> next_for(uint32_t port, std::chrono::milliseconds timeout = 2000ms) {
    std::optional<Pkt> found;
    pump_until(
        [&] {
          for (auto it = inbox.begin(); it != inbox.end(); ++it) {
            if (it->hdr.dst_port != port) continue;
            found = std::move(*it);
            inbox.erase(it);
            return true;
          }
          return false;
        },
        timeout);
    return found;
  }

  // True when the peer closed `fd` (end-of-file or a reset) within `timeout`; keeps the
  // device's events flowing meanwhile.
  bool closed_by_peer(int fd, std::chrono::milliseconds timeout = 1000ms) {
    auto until = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
      registrar.pump(5ms);
      ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return true;
    }
    return false;
  }

  Hdr guest_hdr(uint32_t guest_port, uint32_t host_port, uint16_t op) {
    Hdr h;
    h.src_port = guest_port;
    h.dst_port = host_port;
    h.op = op;
    return h;
  }

  // A host client connected through uds_path to guest port `guest_port`, accepted by
  // the guest. Returns the client and the host-side port the guest sees.
  std::pair<UniqueFd, uint32_t> host_connect(uint32_t guest_port) {
    UniqueFd client = connect_to(uds);
    EXPECT_TRUE(client.valid());
    send_all(client.get(), fmt::format("CONNECT {}\n", guest_port));
    auto req = next_for(guest_port);
    EXPECT_TRUE(req);
    if (!req) return {std::move(client), 0};
    EXPECT_EQ(req->hdr.op, kRequest);
    send(guest_hdr(guest_port, req->hdr.src_port, kResponse));
    return {std::move(client), req->hdr.src_port};
  }

  std::string dir, uds;
  std::unique_ptr<GuestMemory> memory;
  test::TestRegistrar registrar;
  std::unique_ptr<MmioTransport> transport;
  std::unique_ptr<test::VirtioTestDriver> driver;
  Vsock* vsock = nullptr;
  std::deque<Pkt> inbox;
};

TEST_F(VsockTest, IdentifiesAsVsockWithGuestCid) {
  start();
  EXPECT_EQ(driver->read_reg(0x008), 19u);
  EXPECT_TRUE(driver->device_features() & kFeatureRingEventIdx);
  uint64_t cid = driver->read_reg(0x100) | (uint64_t{driver->read_reg(0x104)} << 32);
  EXPECT_EQ(cid, kGuestCid);
  for (uint16_t q = 0; q < 3; ++q) {
    driver->write_reg(0x30, q);
    EXPECT_EQ(driver->read_reg(0x34), Vsock::kQueueSize);
  }
  driver->write_reg(0x30, 3);
  EXPECT_EQ(driver->read_reg(0x34), 0u);
}

TEST_F(VsockTest, ListenerPathLifecycle) {
  {
    auto a = Vsock::create({3, uds});
    ASSERT_TRUE(a.ok()) << a.error().message;
    struct stat st {};
    ASSERT_EQ(::lstat(uds.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    auto b = Vsock::create({4, uds});
    ASSERT_FALSE(b.ok());
    EXPECT_NE(b.error().message.find("in use"), std::string::npos) << b.error().message;
  }
  EXPECT_NE(::access(uds.c_str(), F_OK), 0) << "destroying the device removes its socket";

  {
    // A socket file nobody listens on (a VMM that crashed) is replaced.
    UniqueFd stale = listen_on(uds);
    ASSERT_TRUE(stale.valid());
  }
  ASSERT_EQ(::access(uds.c_str(), F_OK), 0);
  EXPECT_TRUE(Vsock::create({3, uds}).ok());

  std::string file = dir + "/plain";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    std::fclose(f);
  }
  auto c = Vsock::create({3, file});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("not a Unix socket"), std::string::npos) << c.error().message;
  EXPECT_EQ(::access(file.c_str(), F_OK), 0) << "never removes what is not its own";

  EXPECT_FALSE(Vsock::create({3, dir + "/no/such/dir/v.sock"}).ok());
}

TEST_F(VsockTest, HostInitiatedConnectionRelaysBothWays) {
  vsock::Limits limits;
  start(limits);
  UniqueFd client = connect_to(uds);
  ASSERT_TRUE(client.valid());
  send_all(client.get(), "CONNECT 52\n");
  auto req = next_for(52);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, kRequest);
  EXPECT_EQ(req->hdr.src_cid, kHostCid);
  EXPECT_EQ(req->hdr.dst_cid, kGuestCid);
  EXPECT_EQ(req->hdr.type, 1);
  EXPECT_GE(req->hdr.src_port, kFirstHostPort);
  EXPECT_EQ(req->hdr.buf_alloc, limits.conn_buffer);
  EXPECT_EQ(req->hdr.len, 0u);
  uint32_t host_port = req->hdr.src_port;

  EXPECT_EQ(read_now(client.get()), "") << "no OK before the guest accepts";
  send(guest_hdr(52, host_port, kResponse));
  EXPECT_EQ(read_now(client.get()), fmt::format("OK {}\n", host_port));

  send_all(client.get(), "hello guest");
  auto rw = next_for(52);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->hdr.op, kRw);
  EXPECT_EQ(rw->hdr.src_port, host_port);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "hello guest");

  send(guest_hdr(52, host_port, kRw), bytes("hello host"));
  EXPECT_EQ(read_now(client.get()), "hello host");
  EXPECT_EQ(vsock->connection_count(), 1u);
}

TEST_F(VsockTest, ConnectLineMayArriveInPiecesAndDataRightAfterIt) {
  start();
  UniqueFd client = connect_to(uds);
  send_all(client.get(), "conn");
  registrar.pump(20ms);
  send_all(client.get(), "ect 7\nearly bytes");
  auto req = next_for(7);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, kRequest);
  send(guest_hdr(7, req->hdr.src_port, kResponse));
  EXPECT_EQ(read_now(client.get()), fmt::format("OK {}\n", req->hdr.src_port));
  auto rw = next_for(7);
  ASSERT_TRUE(rw);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "early bytes");
}

TEST_F(VsockTest, BadConnectLinesAreClosed) {
  start();
  for (const std::string& line :
       std::vector<std::string>{"HELLO 52\n", "CONNECT\n", "CONNECT 52 53\n", "CONNECT -1\n",
                                "CONNECT 99999999999\n", "CONNECT 5x\n", std::string(40, 'A')}) {
    UniqueFd client = connect_to(uds);
    send_all(client.get(), line);
    registrar.pump(10ms);
    EXPECT_TRUE(closed_by_peer(client.get())) << line;
  }
  collect();
  EXPECT_TRUE(inbox.empty()) << "the guest heard of none of them";
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, GuestRefusalClosesTheHostClient) {
  start();
  UniqueFd client = connect_to(uds);
  send_all(client.get(), "CONNECT 52\n");
  auto req = next_for(52);
  ASSERT_TRUE(req);
  send(guest_hdr(52, req->hdr.src_port, kRst));
  EXPECT_TRUE(closed_by_peer(client.get()));
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, UnansweredRequestTimesOut) {
  vsock::Limits limits;
  limits.request_timeout = 100ms;
  start(limits);
  UniqueFd client = connect_to(uds);
  send_all(client.get(), "CONNECT 52\n");
  auto req = next_for(52);
  ASSERT_TRUE(req);
  auto rst = next_for(52, 2000ms);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, kRst);
  EXPECT_EQ(rst->hdr.src_port, req->hdr.src_port);
  EXPECT_TRUE(closed_by_peer(client.get()));
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, GuestInitiatedConnectionReachesPortListener) {
  start();
  UniqueFd listener = listen_on(uds + "_1234");
  ASSERT_TRUE(listener.valid());
  Hdr req = guest_hdr(5000, 1234, kRequest);
  req.buf_alloc = 32 * 1024;
  send(req);
  auto resp = next_for(5000);
  ASSERT_TRUE(resp);
  EXPECT_EQ(resp->hdr.op, kResponse);
  EXPECT_EQ(resp->hdr.src_port, 1234u);
  EXPECT_EQ(resp->hdr.src_cid, kHostCid);
  EXPECT_EQ(resp->hdr.dst_cid, kGuestCid);
  UniqueFd server = accept_from(listener.get());
  ASSERT_TRUE(server.valid());

  send(guest_hdr(5000, 1234, kRw), bytes("ping"));
  EXPECT_EQ(read_now(server.get()), "ping");
  send_all(server.get(), "pong");
  auto rw = next_for(5000);
  ASSERT_TRUE(rw);
  EXPECT_EQ(rw->hdr.op, kRw);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "pong");

  send(guest_hdr(5000, 1234, kCreditRequest));
  auto update = next_for(5000);
  ASSERT_TRUE(update);
  EXPECT_EQ(update->hdr.op, kCreditUpdate);
  EXPECT_EQ(update->hdr.fwd_cnt, 4u) << "\"ping\" reached the host";
  EXPECT_EQ(update->hdr.buf_alloc, vsock::Limits{}.conn_buffer);
}

TEST_F(VsockTest, GuestConnectionWithoutListenerIsReset) {
  start();
  send(guest_hdr(5000, 4321, kRequest));
  auto rst = next_for(5000);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, kRst);
  EXPECT_EQ(rst->hdr.src_port, 4321u);
  EXPECT_EQ(rst->hdr.dst_port, 5000u);
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, ManyConnectionsAtOnceStayApart) {
  start();
  constexpr int kEach = 6;
  std::vector<UniqueFd> clients;
  std::vector<uint32_t> host_ports;
  for (int i = 0; i < kEach; ++i) {
    auto [client, port] = host_connect(100 + i);
    ASSERT_NE(port, 0u);
    EXPECT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
    clients.push_back(std::move(client));
    host_ports.push_back(port);
  }
  std::vector<UniqueFd> listeners, servers;
  for (int i = 0; i < kEach; ++i) {
    listeners.push_back(listen_on(fmt::format("{}_{}", uds, 2000 + i)));
    send(guest_hdr(6000 + i, 2000 + i, kRequest));
    auto resp = next_for(6000 + i);
    ASSERT_TRUE(resp);
    ASSERT_EQ(resp->hdr.op, kResponse);
    servers.push_back(accept_from(listeners.back().get()));
    ASSERT_TRUE(servers.back().valid());
  }
  EXPECT_EQ(vsock->connection_count(), 2u * kEach);

  // Interleaved traffic in both directions on every connection.
  for (int i = 0; i < kEach; ++i) {
    send_all(clients[i].get(), fmt::format("to-guest-{}", 100 + i));
    send_all(servers[i].get(), fmt::format("from-host-server-{}", 2000 + i));
    send(guest_hdr(100 + i, host_ports[i], kRw), bytes(fmt::format("to-client-{}", i)));
    send(guest_hdr(6000 + i, 2000 + i, kRw), bytes(fmt::format("to-server-{}", i)));
  }
  for (int i = 0; i < kEach; ++i) {
    auto a = next_for(100 + i);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->hdr.src_port, host_ports[i]);
    EXPECT_EQ(std::string(a->data.begin(), a->data.end()), fmt::format("to-guest-{}", 100 + i));
    auto b = next_for(6000 + i);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->hdr.src_port, 2000u + i);
    EXPECT_EQ(std::string(b->data.begin(), b->data.end()),
              fmt::format("from-host-server-{}", 2000 + i));
    EXPECT_EQ(read_now(clients[i].get()), fmt::format("to-client-{}", i));
    EXPECT_EQ(read_now(servers[i].get()), fmt::format("to-server-{}", i));
  }
}

TEST_F(VsockTest, HostToGuestStreamNeverExceedsGuestCredit) {
  start();
  constexpr uint32_t kGuestBuf = 48 * 1024;
  UniqueFd client = connect_to(uds);
  send_all(client.get(), "CONNECT 80\n");
  auto req = next_for(80);
  ASSERT_TRUE(req);
  uint32_t host_port = req->hdr.src_port;
  Hdr resp = guest_hdr(80, host_port, kResponse);
  resp.buf_alloc = kGuestBuf;
  send(resp);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", host_port));

  const std::vector<uint8_t> data = pattern(4 << 20, 1);
  std::vector<uint8_t> got;
  size_t sent = 0;
  uint32_t announced = 0;  // fwd_cnt the guest told the device
  int credit_requests = 0;
  auto until = std::chrono::steady_clock::now() + 60s;
  while (got.size() < data.size() && std::chrono::steady_clock::now() < until) {
    if (sent < data.size()) {
      ssize_t n =
          ::send(client.get(), data.data() + sent, std::min<size_t>(data.size() - sent, 1 << 16),
                 MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    registrar.pump(1ms);
    collect();
    bool update = false;
    while (!inbox.empty()) {
      Pkt p = std::move(inbox.front());
      inbox.pop_front();
      ASSERT_EQ(p.hdr.dst_port, 80u);
      if (p.hdr.op == kRw) {
        got.insert(got.end(), p.data.begin(), p.data.end());
        // The device may never have more bytes in flight than the guest offered.
        ASSERT_LE(got.size() - announced, kGuestBuf);
      } else {
        ASSERT_EQ(p.hdr.op, kCreditRequest);
        credit_requests++;
        update = true;
      }
    }
    // The guest application consumes lazily: only when asked, or half the buffer.
    if (update || got.size() - announced >= kGuestBuf / 2 + 1000) {
      announced = static_cast<uint32_t>(got.size());
      Hdr credit = guest_hdr(80, host_port, kCreditUpdate);
      credit.buf_alloc = kGuestBuf;
      credit.fwd_cnt = announced;
      send(credit);
    }
  }
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data) << "the stream arrives intact and in order";
  EXPECT_GT(credit_requests, 0) << "the device ran out of credit and asked for more";
}

TEST_F(VsockTest, GuestToHostStreamIsBufferedWithinCredit) {
  vsock::Limits limits;
  start(limits);
  UniqueFd listener = listen_on(uds + "_90");
  send(guest_hdr(7000, 90, kRequest));
  auto resp = next_for(7000);
  ASSERT_TRUE(resp);
  ASSERT_EQ(resp->hdr.op, kResponse);
  UniqueFd server = accept_from(listener.get());
  ASSERT_TRUE(server.valid());
  uint32_t dev_buf = resp->hdr.buf_alloc;
  uint32_t dev_fwd = resp->hdr.fwd_cnt;
  ASSERT_EQ(dev_buf, limits.conn_buffer);

  const std::vector<uint8_t> data = pattern(4 << 20, 2);
  std::vector<uint8_t> got;
  uint32_t sent = 0;
  bool host_reading = false;
  int stalls = 0, updates = 0;
  auto until = std::chrono::steady_clock::now() + 60s;
  while (got.size() < data.size() && std::chrono::steady_clock::now() < until) {
    uint32_t credit = dev_buf - (sent - dev_fwd);
    ASSERT_LE(sent - dev_fwd, dev_buf);
    if (credit > 0 && sent < data.size()) {
      uint32_t n =
          std::min<uint32_t>({credit, 16 * 1024, static_cast<uint32_t>(data.size() - sent)});
      send(guest_hdr(7000, 90, kRw), {data.begin() + sent, data.begin() + sent + n});
      sent += n;
    } else if (sent < data.size()) {
      // Out of credit: the host has not read, so the device holds a full buffer.
      stalls++;
      host_reading = true;
    }
    ASSERT_LE(vsock->buffered_bytes(), limits.conn_buffer);
    if (host_reading) {
      std::string chunk = read_now(server.get());
      got.insert(got.end(), chunk.begin(), chunk.end());
    }
    registrar.pump(credit > 0 ? 0ms : 1ms);
    collect();
    while (!inbox.empty()) {
      Pkt p = std::move(inbox.front());
      inbox.pop_front();
      ASSERT_EQ(p.hdr.dst_port, 7000u);
      ASSERT_TRUE(p.hdr.op == kCreditUpdate) << p.hdr.op;
      dev_fwd = p.hdr.fwd_cnt;
      dev_buf = p.hdr.buf_alloc;
      updates++;
    }
  }
  ASSERT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
  EXPECT_GT(stalls, 0) << "the guest had to wait for the host";
  EXPECT_GT(updates, 0) << "and the device told it when room came back";
}

TEST_F(VsockTest, GuestShutdownReachesHostAndCloseIsAcknowledged) {
  start();
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
  send(guest_hdr(52, port, kRw), bytes("last words"));
  Hdr shut = guest_hdr(52, port, kShutdown);
  shut.flags = kShutSend;
  send(shut);
  // The host reads the data, then end-of-file, and may still answer.
  EXPECT_EQ(read_now(client.get()), "last words");
  EXPECT_TRUE(closed_by_peer(client.get()));
  send_all(client.get(), "reply");
  auto rw = next_for(52);
  ASSERT_TRUE(rw);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "reply");
  // A full close gets an RST back and the host stream goes away.
  shut.flags = kShutRcv | kShutSend;
  send(shut);
  auto rst = next_for(52);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, kRst);
  EXPECT_EQ(vsock->connection_count(), 0u);
  char c;
  EXPECT_EQ(::send(client.get(), &c, 1, MSG_NOSIGNAL), -1);
}

TEST_F(VsockTest, HostHalfCloseAndFullClose) {
  start();
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
  send_all(client.get(), "question");
  ::shutdown(client.get(), SHUT_WR);
  auto rw = next_for(52);
  ASSERT_TRUE(rw);
  EXPECT_EQ(std::string(rw->data.begin(), rw->data.end()), "question");
  auto shut = next_for(52);
  ASSERT_TRUE(shut);
  EXPECT_EQ(shut->hdr.op, kShutdown);
  EXPECT_EQ(shut->hdr.flags, kShutSend) << "half-closed: the host still listens";
  send(guest_hdr(52, port, kRw), bytes("answer"));
  EXPECT_EQ(read_now(client.get()), "answer");

  client.reset();
  auto full = next_for(52);
  ASSERT_TRUE(full);
  EXPECT_EQ(full->hdr.op, kShutdown);
  EXPECT_EQ(full->hdr.flags, kShutRcv | kShutSend);
  send(guest_hdr(52, port, kRst));
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, HostCloseWithoutGuestAckTimesOut) {
  vsock::Limits limits;
  limits.shutdown_timeout = 100ms;
  start(limits);
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
  client.reset();
  auto shut = next_for(52);
  ASSERT_TRUE(shut);
  EXPECT_EQ(shut->hdr.op, kShutdown);
  EXPECT_EQ(shut->hdr.flags, kShutRcv | kShutSend);
  auto rst = next_for(52);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, kRst);
  EXPECT_EQ(vsock->connection_count(), 0u);
}

TEST_F(VsockTest, GuestResetClosesHostStream) {
  start();
  UniqueFd listener = listen_on(uds + "_77");
  send(guest_hdr(5001, 77, kRequest));
  ASSERT_TRUE(next_for(5001));
  UniqueFd server = accept_from(listener.get());
  send(guest_hdr(5001, 77, kRst));
  EXPECT_TRUE(closed_by_peer(server.get()));
  EXPECT_EQ(vsock->connection_count(), 0u);
  collect();
  EXPECT_TRUE(inbox.empty()) << "an RST is never answered";
}

TEST_F(VsockTest, MalformedPacketsAreDroppedOrReset) {
  start();
  // Too short for a header: dropped.
  send_raw(guest_hdr(1, 2, kRequest), {}, 20);
  // Wrong destination or source CID: dropped without a word.
  Hdr h = guest_hdr(5000, 1234, kRw);
  h.dst_cid = 7;
  send(h, bytes("x"));
  h = guest_hdr(5000, 1234, kRw);
  h.src_cid = 99;
  send(h, bytes("x"));
  // An RST for nothing: ignored.
  send(guest_hdr(5000, 1234, kRst));
  collect();
  EXPECT_TRUE(inbox.empty());

  // Data for no connection, a length past the buffer or past 64 KiB, a non-stream type:
  // each gets an RST back.
  send(guest_hdr(5001, 1, kRw), bytes("stray"));
  h = guest_hdr(5002, 1, kRw);
  h.len = 1000;
  send_raw(h, bytes("short"), kHeader + 5);
  h = guest_hdr(5003, 1, kRw);
  h.len = 70000;
  send_raw(h, std::vector<uint8_t>(70000), kHeader + 70000);
  h = guest_hdr(5004, 1, kRequest);
  h.type = 2;  // SEQPACKET, not offered
  send(h);
  for (uint32_t port : {5001u, 5002u, 5003u, 5004u}) {
    auto rst = next_for(port);
    ASSERT_TRUE(rst) << port;
    EXPECT_EQ(rst->hdr.op, kRst) << port;
    EXPECT_EQ(rst->hdr.src_port, 1u);
  }
  EXPECT_EQ(vsock->connection_count(), 0u);
  EXPECT_FALSE(driver->read_reg(0x70) & kStatusNeedsReset);
}

TEST_F(VsockTest, ProtocolViolationsResetALiveConnection) {
  start();
  struct Case {
    const char* what;
    std::function<void(uint32_t port)> violate;
  };
  std::vector<Case> cases = {
      {"bad length",
       [&](uint32_t port) {
         Hdr h = guest_hdr(52, port, kRw);
         h.len = 5000;
         send_raw(h, bytes("abc"), kHeader + 3);
       }},
      {"unknown op", [&](uint32_t port) { send(guest_hdr(52, port, 99)); }},
      {"second request", [&](uint32_t port) { send(guest_hdr(52, port, kRequest)); }},
      {"second response", [&](uint32_t port) { send(guest_hdr(52, port, kResponse)); }},
      {"wrong type",
       [&](uint32_t port) {
         Hdr h = guest_hdr(52, port, kRw);
         h.type = 2;
         send(h, bytes("x"));
       }},
  };
  for (const auto& c : cases) {
    auto [client, port] = host_connect(52);
    ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port)) << c.what;
    c.violate(port);
    auto rst = next_for(52);
    ASSERT_TRUE(rst) << c.what;
    EXPECT_EQ(rst->hdr.op, kRst) << c.what;
    EXPECT_EQ(rst->hdr.src_port, port) << c.what;
    EXPECT_TRUE(closed_by_peer(client.get())) << c.what;
    EXPECT_EQ(vsock->connection_count(), 0u) << c.what;
  }
}

TEST_F(VsockTest, DataBeyondCreditIsReset) {
  vsock::Limits limits;
  limits.conn_buffer = 16 * 1024;
  start(limits);
  UniqueFd listener = listen_on(uds + "_91");
  send(guest_hdr(7001, 91, kRequest));
  ASSERT_TRUE(next_for(7001));
  UniqueFd server = accept_from(listener.get());  // and never read
  std::vector<uint8_t> chunk(8 * 1024, 'z');
  bool reset = false;
  for (int i = 0; i < 1000 && !reset; ++i) {
    send(guest_hdr(7001, 91, kRw), chunk);  // ignoring the device's credit
    EXPECT_LE(vsock->buffered_bytes(), limits.conn_buffer);
    collect();
    for (const Pkt& p : inbox) reset |= p.hdr.op == kRst;
  }
  EXPECT_TRUE(reset) << "a guest that ignores credit gets reset";
  EXPECT_EQ(vsock->connection_count(), 0u);
  EXPECT_EQ(vsock->buffered_bytes(), 0u);
}

TEST_F(VsockTest, BadRxBuffersAreSkipped) {
  start();
  // Use up every rx buffer with RSTs for stray packets, and keep them.
  for (int i = 0; i < kRxSize; ++i) send(guest_hdr(5000 + i, 4321, kRw));
  ASSERT_EQ(driver->used_idx(0), kRxSize);
  for (int i = 0; i < kRxSize; ++i) ASSERT_TRUE(driver->take_used(0));
  send(guest_hdr(6000, 4321, kRw));  // its RST waits for a buffer
  // A buffer too small for a header and a device-readable one are returned empty; the
  // RST lands in the first good one.
  driver->post(0, {{kRxBase, 20, true}}, 0);
  driver->post(0, {{kRxBase + kRxBufLen, kRxBufLen, false}}, 1);
  driver->post(0, {{kRxBase + 2 * kRxBufLen, kRxBufLen, true}}, 2);
  driver->kick(0);
  std::vector<std::pair<uint32_t, uint32_t>> used;
  while (auto u = driver->take_used(0)) used.push_back(*u);
  ASSERT_EQ(used.size(), 3u);
  EXPECT_EQ(used[0], std::make_pair(0u, 0u));
  EXPECT_EQ(used[1], std::make_pair(1u, 0u));
  EXPECT_EQ(used[2], std::make_pair(2u, kHeader));
  std::vector<uint8_t> raw(kHeader);
  ASSERT_TRUE(memory->read(kRxBase + 2 * kRxBufLen, raw).ok());
  EXPECT_EQ(decode(raw.data()).op, kRst);
  EXPECT_EQ(decode(raw.data()).dst_port, 6000u);
  EXPECT_FALSE(driver->read_reg(0x70) & kStatusNeedsReset);
}

TEST_F(VsockTest, HeaderOnlyRxBufferDoesNotBlockData) {
  start();
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
  for (int i = 0; i < kRxSize; ++i) send(guest_hdr(5000 + i, 4321, kRw));
  for (int i = 0; i < kRxSize; ++i) ASSERT_TRUE(driver->take_used(0));
  driver->post(0, {{kRxBase, kHeader, true}}, 0);
  driver->kick(0);
  send_all(client.get(), "payload");
  for (int i = 0; i < 5; ++i) registrar.pump(5ms);
  driver->post(0, {{kRxBase + kRxBufLen, kRxBufLen, true}}, 1);
  driver->kick(0);
  auto first = driver->take_used(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, std::make_pair(0u, 0u)) << "the useless buffer comes back empty";
  auto second = driver->take_used(0);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, std::make_pair(1u, kHeader + 7));
  std::vector<uint8_t> raw(kHeader + 7);
  ASSERT_TRUE(memory->read(kRxBase + kRxBufLen, raw).ok());
  EXPECT_EQ(decode(raw.data()).op, kRw);
  EXPECT_EQ(std::string(raw.begin() + kHeader, raw.end()), "payload");
}

TEST_F(VsockTest, RstFloodWithoutRxBuffersIsBounded) {
  start();
  // Use up the rx buffers, then flood: queued RSTs are capped, not unbounded.
  for (int i = 0; i < kRxSize; ++i) send(guest_hdr(9000, 1, kRw));
  for (int i = 0; i < 2000; ++i) send(guest_hdr(10000 + i, 1, kRw));
  uint16_t before = driver->used_idx(0);
  for (int i = 0; i < kRxSize; ++i) ASSERT_TRUE(driver->take_used(0));
  int delivered = 0;
  for (int round = 0; round < 10; ++round) {
    for (uint16_t i = 0; i < kRxSize; ++i) post_rx(i);
    driver->kick(0);
    while (driver->take_used(0)) delivered++;
  }
  EXPECT_EQ(before, kRxSize);
  EXPECT_GT(delivered, 0);
  EXPECT_LE(delivered, 256) << "the RST queue is bounded";
}

TEST_F(VsockTest, ConnectionLimitIsEnforced) {
  vsock::Limits limits;
  limits.max_connections = 3;
  start(limits);
  UniqueFd listener = listen_on(uds + "_55");
  for (uint32_t i = 0; i < 3; ++i) {
    send(guest_hdr(8000 + i, 55, kRequest));
    auto resp = next_for(8000 + i);
    ASSERT_TRUE(resp);
    EXPECT_EQ(resp->hdr.op, kResponse);
  }
  send(guest_hdr(8003, 55, kRequest));
  auto rst = next_for(8003);
  ASSERT_TRUE(rst);
  EXPECT_EQ(rst->hdr.op, kRst) << "a fourth guest connection is refused";
  UniqueFd client = connect_to(uds);
  ASSERT_TRUE(client.valid());
  registrar.pump(20ms);
  EXPECT_TRUE(closed_by_peer(client.get())) << "so is a host one";
  EXPECT_EQ(vsock->connection_count(), 3u);
}

TEST_F(VsockTest, DeviceResetClosesConnectionsAndKeepsListening) {
  start();
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));
  driver->write_reg(0x70, 0);
  EXPECT_TRUE(closed_by_peer(client.get()));
  EXPECT_EQ(vsock->connection_count(), 0u);

  // While the driver is down, a new host client waits in the listen backlog.
  UniqueFd waiting = connect_to(uds);
  ASSERT_TRUE(waiting.valid());
  send_all(waiting.get(), "CONNECT 53\n");
  registrar.pump(20ms);
  ASSERT_EQ(driver->start(kFeatureVersion1, {kRxSize, kTxSize, kEvSize}), 15u);
  for (uint16_t i = 0; i < kRxSize; ++i) post_rx(i);
  driver->kick(0);
  auto req = next_for(53);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, kRequest);
}

TEST_F(VsockTest, TransportResetDropsConnectionsAndPausesRx) {
  start();
  (void)memory->fill(kEvBase, 0xff, 8);
  driver->post(2, {{kEvBase, 8, true}}, 0);
  driver->kick(2);
  auto [client, port] = host_connect(52);
  ASSERT_EQ(read_now(client.get()), fmt::format("OK {}\n", port));

  ASSERT_TRUE(vsock->send_transport_reset().ok());
  auto used = driver->take_used(2);
  ASSERT_TRUE(used);
  EXPECT_EQ(used->second, 4u);
  EXPECT_EQ(memory->read_obj<uint32_t>(kEvBase).value(), 0u)
      << "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET";
  EXPECT_TRUE(closed_by_peer(client.get()));
  EXPECT_EQ(vsock->connection_count(), 0u);

  // Until the driver re-arms the event queue, the guest hears nothing.
  UniqueFd next = connect_to(uds);
  send_all(next.get(), "CONNECT 60\n");
  EXPECT_FALSE(next_for(60, 200ms));
  driver->post(2, {{kEvBase, 8, true}}, 0);
  driver->kick(2);
  auto req = next_for(60);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->hdr.op, kRequest);

  // The re-armed buffer serves the next reset; without one it is an error, not a pretence.
  EXPECT_TRUE(vsock->send_transport_reset().ok());
  EXPECT_EQ(vsock->connection_count(), 0u);
  auto no_buffer = vsock->send_transport_reset();
  ASSERT_FALSE(no_buffer.ok());
  EXPECT_NE(no_buffer.error().message.find("no event buffer"), std::string::npos);
}

}  // namespace
}  // namespace ignition::devices::virtio
