// The MMDS network stack fed raw Ethernet frames, as the net device's TX path hands them
// over: ARP, the TCP handshake, HTTP over TCP (segmentation, windows, retransmission, close),
// V1 and V2 tokens, the connection limit, and malformed or foreign frames. The replies'
// checksums are verified by an implementation independent of the stack's.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "mmds/frames.hpp"
#include "mmds/stack.hpp"

namespace ignition::mmds {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = DataStore::Clock;

constexpr MacAddress kGuestMac = {0x02, 0, 0, 0, 0, 0x02};
constexpr uint32_t kGuestIp = 0x0a000002;  // 10.0.0.2
constexpr uint32_t kMmdsIp = 0xa9fea9fe;   // 169.254.169.254

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{get16(p)} << 16 | get16(p + 2);
}
void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}

// RFC 1071, written out again so a checksum bug in the stack cannot hide behind itself.
uint16_t ones_sum(const std::vector<uint8_t>& data) {
  uint32_t sum = 0;
  for (size_t i = 0; i < data.size(); i += 2)
    sum += static_cast<uint32_t>(data[i] << 8) | (i + 1 < data.size() ? data[i + 1] : 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

// A frame the stack sent, checked and taken apart.
struct Reply {
  std::vector<uint8_t> bytes;
  bool is_arp() const { return get16(&bytes[12]) == kEtherTypeArp; }
  const uint8_t* ip() const { return &bytes[14]; }
  const uint8_t* tcp() const { return ip() + 20; }
  uint32_t seq() const { return get32(tcp() + 4); }
  uint32_t ack() const { return get32(tcp() + 8); }
  uint8_t flags() const { return tcp()[13]; }
  uint16_t window() const { return get16(tcp() + 14); }
  uint16_t dst_port() const { return get16(tcp() + 2); }
  size_t tcp_header() const { return (tcp()[12] >> 4) * 4u; }
  std::string payload() const {
    size_t total = get16(ip() + 2);
    return std::string(reinterpret_cast<const char*>(tcp() + tcp_header()),
                       total - 20 - tcp_header());
  }
  std::optional<uint16_t> mss() const {
    if (tcp_header() >= 24 && tcp()[20] == 2 && tcp()[21] == 4) return get16(tcp() + 22);
    return std::nullopt;
  }
  // Everything a receiver would check on an IPv4 TCP frame from the MMDS to the guest.
  ::testing::AssertionResult valid_tcp(uint16_t from_port = 80) const {
    if (bytes.size() < 54 || get16(&bytes[12]) != kEtherTypeIpv4)
      return ::testing::AssertionFailure() << "not an IPv4 frame";
    if (!std::equal(kGuestMac.begin(), kGuestMac.end(), bytes.begin()) ||
        !std::equal(kDefaultMmdsMac.begin(), kDefaultMmdsMac.end(), bytes.begin() + 6))
      return ::testing::AssertionFailure() << "wrong MACs";
    if (ip()[0] != 0x45 || ip()[9] != 6) return ::testing::AssertionFailure() << "IP header";
    size_t total = get16(ip() + 2);
    if (total + 14 != bytes.size()) return ::testing::AssertionFailure() << "IP length";
    if (get32(ip() + 12) != kMmdsIp || get32(ip() + 16) != kGuestIp)
      return ::testing::AssertionFailure() << "IP addresses";
    if (ones_sum(std::vector<uint8_t>(ip(), ip() + 20)) != 0xffff)
      return ::testing::AssertionFailure() << "IP checksum";
    std::vector<uint8_t> pseudo;
    put32(pseudo, kMmdsIp);
    put32(pseudo, kGuestIp);
    put16(pseudo, 6);
    put16(pseudo, static_cast<uint16_t>(total - 20));
    pseudo.insert(pseudo.end(), tcp(), ip() + total);
    if (ones_sum(pseudo) != 0xffff) return ::testing::AssertionFailure() << "TCP checksum";
    if (get16(tcp()) != from_port) return ::testing::AssertionFailure() << "source port";
    return ::testing::AssertionSuccess();
  }
};

std::vector<uint8_t> arp_request(uint32_t target, uint16_t op = 1) {
  std::vector<uint8_t> f(6, 0xff);
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put16(f, kEtherTypeArp);
  put16(f, 1);
  put16(f, kEtherTypeIpv4);
  f.push_back(6);
  f.push_back(4);
  put16(f, op);
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put32(f, kGuestIp);
  f.insert(f.end(), 6, 0);
  put32(f, target);
  return f;
}

// A guest TCP frame, built by hand (not with the stack's builder).
std::vector<uint8_t> tcp_frame(uint16_t src_port, uint32_t seq, uint32_t ack, uint8_t flags,
                               std::string_view payload = {}, uint16_t window = 64240,
                               std::optional<uint16_t> mss = std::nullopt, uint32_t dst = kMmdsIp,
                               uint16_t dst_port = 80) {
  std::vector<uint8_t> tcp;
  put16(tcp, src_port);
  put16(tcp, dst_port);
  put32(tcp, seq);
  put32(tcp, ack);
  tcp.push_back(static_cast<uint8_t>((mss ? 6 : 5) << 4));
  tcp.push_back(flags);
  put16(tcp, window);
  put16(tcp, 0);
  put16(tcp, 0);
  if (mss) {
    tcp.push_back(2);
    tcp.push_back(4);
    put16(tcp, *mss);
  }
  tcp.insert(tcp.end(), payload.begin(), payload.end());
  std::vector<uint8_t> pseudo;
  put32(pseudo, kGuestIp);
  put32(pseudo, dst);
  put16(pseudo, 6);
  put16(pseudo, static_cast<uint16_t>(tcp.size()));
  pseudo.insert(pseudo.end(), tcp.begin(), tcp.end());
  uint16_t sum = static_cast<uint16_t>(~ones_sum(pseudo));
  tcp[16] = static_cast<uint8_t>(sum >> 8);
  tcp[17] = static_cast<uint8_t>(sum);

  std::vector<uint8_t> f(kDefaultMmdsMac.begin(), kDefaultMmdsMac.end());
  f.insert(f.end(), kGuestMac.begin(), kGuestMac.end());
  put16(f, kEtherTypeIpv4);
  std::vector<uint8_t> ip;
  put16(ip, 0x4500);
  put16(ip, static_cast<uint16_t>(20 + tcp.size()));
  put32(ip, 0x00004000);
  put16(ip, 0x4006);
  put16(ip, 0);
  put32(ip, kGuestIp);
  put32(ip, dst);
  uint16_t ipsum = static_cast<uint16_t>(~ones_sum(ip));
  ip[10] = static_cast<uint8_t>(ipsum >> 8);
  ip[11] = static_cast<uint8_t>(ipsum);
  f.insert(f.end(), ip.begin(), ip.end());
  f.insert(f.end(), tcp.begin(), tcp.end());
  return f;
}

// Recomputes the IPv4 header checksum of a frame after a test changed the header.
void fix_ip_sum(std::vector<uint8_t>& f) {
  f[24] = f[25] = 0;
  uint16_t sum =
      static_cast<uint16_t>(~ones_sum(std::vector<uint8_t>(f.begin() + 14, f.begin() + 34)));
  f[24] = static_cast<uint8_t>(sum >> 8);
  f[25] = static_cast<uint8_t>(sum);
}

struct MmdsStackTest : ::testing::Test {
  void SetUp() override { ASSERT_TRUE(store->put(doc).ok()); }

  Stack& stack() {
    if (!stack_) {
      options.clock = [this] { return now; };
      stack_ = std::make_unique<Stack>(store, options);
    }
    return *stack_;
  }

  std::vector<Reply> drain() {
    std::vector<Reply> out;
    std::vector<uint8_t> buf(65536);
    while (size_t n = stack().next_frame(buf)) {
      out.push_back({std::vector<uint8_t>(buf.begin(), buf.begin() + n)});
      if (out.size() > 10000) break;
    }
    return out;
  }

  // One guest-side connection, driven by hand.
  struct Client {
    MmdsStackTest& t;
    uint16_t port;
    uint32_t seq = 1000;  // next byte we send
    uint32_t ack = 0;     // next byte we expect
    uint16_t window = 64240;

    bool send(uint8_t flags, std::string_view payload = {}) {
      bool taken = t.stack().take_frame(tcp_frame(port, seq, ack, flags, payload, window));
      seq += static_cast<uint32_t>(payload.size()) + ((flags & (kTcpSyn | kTcpFin)) ? 1 : 0);
      return taken;
    }
    void connect() {
      ASSERT_TRUE(
          t.stack().take_frame(tcp_frame(port, seq, 0, kTcpSyn, {}, window, uint16_t{1460})));
      seq += 1;
      auto replies = t.drain();
      ASSERT_EQ(replies.size(), 1u);
      ASSERT_TRUE(replies[0].valid_tcp());
      ASSERT_EQ(replies[0].flags(), kTcpSyn | kTcpAck);
      ASSERT_EQ(replies[0].ack(), seq);
      ack = replies[0].seq() + 1;
      ASSERT_TRUE(send(kTcpAck));
      EXPECT_TRUE(t.drain().empty()) << "a bare ACK needs no answer";
    }
    // Sends `request` and collects the reply's bytes, acknowledging them, until the stack
    // has nothing more to say. Sets *fin when the MMDS closed.
    std::string exchange(std::string_view request, bool* fin = nullptr) {
      if (!request.empty()) {
        EXPECT_TRUE(send(kTcpAck | kTcpPsh, request));
      }
      std::string got;
      for (int round = 0; round < 1000; ++round) {
        auto replies = t.drain();
        if (replies.empty()) break;
        for (const Reply& r : replies) {
          EXPECT_TRUE(r.valid_tcp());
          EXPECT_EQ(r.dst_port(), port);
          if (r.seq() != ack) continue;  // a retransmission we already have
          got += r.payload();
          ack += static_cast<uint32_t>(r.payload().size());
          if (r.flags() & kTcpFin) {
            ack += 1;
            if (fin) *fin = true;
          }
        }
        send(kTcpAck);
      }
      return got;
    }
  };

  Client client(uint16_t port) { return Client{*this, port}; }

  static unsigned status_of(const std::string& response) {
    return response.size() > 12 ? static_cast<unsigned>(std::stoi(response.substr(9, 3))) : 0;
  }
  static std::string body_of(const std::string& response) {
    size_t end = response.find("\r\n\r\n");
    return end == std::string::npos ? "" : response.substr(end + 4);
  }

  json doc = {{"latest", {{"meta-data", {{"hostname", "vm-1"}, {"id", "i-123"}}}}}};
  std::shared_ptr<DataStore> store = std::make_shared<DataStore>();
  StackOptions options;
  Clock::time_point now = Clock::time_point() + 100h;
  std::unique_ptr<Stack> stack_;
};

TEST_F(MmdsStackTest, ArpRequestForTheMmdsAddressIsAnswered) {
  ASSERT_TRUE(stack().take_frame(arp_request(kMmdsIp)));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u);
  const auto& f = replies[0].bytes;
  ASSERT_EQ(f.size(), 42u);
  EXPECT_TRUE(replies[0].is_arp());
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), f.begin())) << "to the asker";
  EXPECT_EQ(get16(&f[20]), 2) << "a reply";
  EXPECT_TRUE(std::equal(kDefaultMmdsMac.begin(), kDefaultMmdsMac.end(), f.begin() + 22));
  EXPECT_EQ(get32(&f[28]), kMmdsIp);
  EXPECT_TRUE(std::equal(kGuestMac.begin(), kGuestMac.end(), f.begin() + 32));
  EXPECT_EQ(get32(&f[38]), kGuestIp);

  EXPECT_FALSE(stack().take_frame(arp_request(0x0a000001))) << "another address: the TAP's";
  EXPECT_TRUE(drain().empty());
  EXPECT_TRUE(stack().take_frame(arp_request(kMmdsIp, 2))) << "an ARP reply to the MMDS";
  EXPECT_TRUE(drain().empty()) << "is dropped, not answered";
  EXPECT_EQ(stack().metrics().rx_accepted_err.load(), 1u);
}

TEST_F(MmdsStackTest, ConfiguredAddressIsTheOneAnswered) {
  options.ipv4 = 0xa9fe0102;  // 169.254.1.2
  EXPECT_FALSE(stack().take_frame(arp_request(kMmdsIp)));
  ASSERT_TRUE(stack().take_frame(arp_request(0xa9fe0102)));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(get32(&replies[0].bytes[28]), 0xa9fe0102u);
}

TEST_F(MmdsStackTest, SynGetsSynAck) {
  ASSERT_TRUE(stack().take_frame(tcp_frame(40000, 5000, 0, kTcpSyn, {}, 64240, uint16_t{1460})));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u);
  const Reply& r = replies[0];
  EXPECT_TRUE(r.valid_tcp());
  EXPECT_EQ(r.flags(), kTcpSyn | kTcpAck);
  EXPECT_EQ(r.ack(), 5001u);
  EXPECT_EQ(r.dst_port(), 40000);
  EXPECT_EQ(r.mss(), TcpConnection::kMaxSegment);
  EXPECT_EQ(r.window(), TcpConnection::kMaxRequestBytes);
  EXPECT_EQ(stack().connections(), 1u);
  EXPECT_EQ(stack().metrics().connections_created.load(), 1u);
}

TEST_F(MmdsStackTest, HttpGetOverTcpReturnsTheDocument) {
  auto c = client(40001);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  std::string response =
      c.exchange("GET / HTTP/1.1\r\nHost: 169.254.169.254\r\nAccept: application/json\r\n\r\n");
  EXPECT_EQ(status_of(response), 200u) << response;
  EXPECT_NE(response.find("Content-Type: application/json"), std::string::npos);
  EXPECT_EQ(json::parse(body_of(response), nullptr, false), doc);

  // Same connection (HTTP/1.1 keeps it), an IMDS listing this time, then a leaf.
  response = c.exchange("GET /latest/meta-data/ HTTP/1.1\r\n\r\n");
  EXPECT_EQ(body_of(response), "hostname\nid");
  // The API changes the document; the guest sees it at once.
  ASSERT_TRUE(store->patch({{"latest", {{"meta-data", {{"hostname", "renamed"}}}}}}).ok());
  response = c.exchange("GET /latest/meta-data/hostname HTTP/1.1\r\n\r\n");
  EXPECT_EQ(body_of(response), "renamed");
  EXPECT_EQ(status_of(c.exchange("GET /nope HTTP/1.1\r\n\r\n")), 404u);
  EXPECT_EQ(stack().connections(), 1u);
}

TEST_F(MmdsStackTest, RequestSplitOverSegmentsAndConnectionClose) {
  auto c = client(40002);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  std::string_view request = "GET /latest/meta-data/id HTTP/1.1\r\nConnection: close\r\n\r\n";
  size_t cut = request.size() - 5;
  for (size_t i = 0; i < cut; i += 7) {
    ASSERT_TRUE(c.send(kTcpAck, request.substr(i, std::min<size_t>(7, cut - i))));
    auto acks = drain();
    ASSERT_EQ(acks.size(), 1u) << "every piece acknowledged, nothing answered yet";
    EXPECT_EQ(acks[0].ack(), c.seq);
    EXPECT_TRUE(acks[0].payload().empty());
  }
  bool fin = false;
  std::string response = c.exchange(request.substr(cut), &fin);
  EXPECT_EQ(body_of(response), "i-123") << response;
  EXPECT_NE(response.find("Connection: close"), std::string::npos);
  EXPECT_TRUE(fin) << "the MMDS closes after answering Connection: close";
  EXPECT_EQ(stack().connections(), 1u) << "until the guest closes too";
  ASSERT_TRUE(c.send(kTcpFin | kTcpAck));
  auto last = drain();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].flags(), kTcpAck);
  EXPECT_EQ(last[0].ack(), c.seq);
  EXPECT_EQ(stack().connections(), 0u);
  EXPECT_EQ(stack().metrics().connections_destroyed.load(), 1u);
}

TEST_F(MmdsStackTest, GuestCloseFirst) {
  auto c = client(40003);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  ASSERT_TRUE(c.send(kTcpFin | kTcpAck));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u) << "the ACK of the guest's FIN rides on the MMDS's FIN";
  EXPECT_EQ(replies.back().flags(), kTcpFin | kTcpAck);
  EXPECT_EQ(replies.back().ack(), c.seq);
  c.ack = replies.back().seq() + 1;
  ASSERT_TRUE(c.send(kTcpAck));
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(stack().connections(), 0u);
}

TEST_F(MmdsStackTest, LargeResponseRespectsMssAndWindow) {
  std::string blob;
  for (int i = 0; blob.size() < 40000; ++i) blob += std::to_string(i) + ",";
  ASSERT_TRUE(store->put({{"blob", blob}}).ok());
  auto c = client(40004);
  c.window = 3000;
  ASSERT_NO_FATAL_FAILURE(c.connect());
  ASSERT_TRUE(c.send(kTcpAck | kTcpPsh, "GET /blob HTTP/1.1\r\n\r\n"));
  std::string got;
  size_t rounds = 0;
  while (true) {
    auto replies = drain();
    if (replies.empty()) break;
    ++rounds;
    size_t in_flight = 0;
    for (const Reply& r : replies) {
      ASSERT_TRUE(r.valid_tcp());
      EXPECT_LE(r.payload().size(), 1460u);
      ASSERT_EQ(r.seq(), c.ack + in_flight) << "in order, no gaps";
      in_flight += r.payload().size();
      got += r.payload();
    }
    EXPECT_LE(in_flight, 3000u) << "never more than the guest's window";
    c.ack += static_cast<uint32_t>(in_flight);
    ASSERT_TRUE(c.send(kTcpAck));
  }
  EXPECT_EQ(body_of(got), blob);
  EXPECT_GT(rounds, 13u) << "40 KB through a 3000-byte window";
}

TEST_F(MmdsStackTest, LostSegmentIsRetransmittedAfterTimeout) {
  auto c = client(40005);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  ASSERT_TRUE(c.send(kTcpAck | kTcpPsh, "GET /latest/meta-data/id HTTP/1.1\r\n\r\n"));
  auto first = drain();
  ASSERT_EQ(first.size(), 1u);
  std::string lost = first[0].payload();
  ASSERT_FALSE(lost.empty());
  EXPECT_TRUE(drain().empty()) << "nothing before the timeout";
  now += TcpConnection::kInitialRto;
  auto again = drain();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].seq(), first[0].seq());
  EXPECT_EQ(again[0].payload(), lost);
  // Acknowledged: no more retransmissions, however long we wait.
  c.ack += static_cast<uint32_t>(lost.size());
  ASSERT_TRUE(c.send(kTcpAck));
  now += 60s;
  EXPECT_TRUE(drain().empty());
}

TEST_F(MmdsStackTest, ShutWindowIsProbedUntilItOpens) {
  auto c = client(40017);
  c.window = 50;
  ASSERT_NO_FATAL_FAILURE(c.connect());
  ASSERT_TRUE(c.send(kTcpAck | kTcpPsh, "GET /latest/meta-data/id HTTP/1.1\r\n\r\n"));
  auto first = drain();
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].payload().size(), 50u) << "as much as the window takes";
  c.ack += 50;
  c.window = 0;  // the guest's buffer is full
  ASSERT_TRUE(c.send(kTcpAck));
  EXPECT_TRUE(drain().empty());
  now += TcpConnection::kInitialRto;
  auto probe = drain();
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_EQ(probe[0].seq(), c.ack);
  EXPECT_EQ(probe[0].payload().size(), 1u) << "one byte past the shut window";
  // The window has opened meanwhile: the guest takes the byte and says so; the rest flows.
  c.ack += 1;
  c.window = 64240;
  ASSERT_TRUE(c.send(kTcpAck));
  std::string rest = c.exchange("");
  EXPECT_EQ(body_of(first[0].payload() + probe[0].payload() + rest), "i-123");
}

TEST_F(MmdsStackTest, LostSynAckIsSentAgainForARetransmittedSyn) {
  ASSERT_TRUE(stack().take_frame(tcp_frame(40006, 77, 0, kTcpSyn)));
  auto first = drain();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(stack().take_frame(tcp_frame(40006, 77, 0, kTcpSyn)));
  auto second = drain();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].flags(), kTcpSyn | kTcpAck);
  EXPECT_EQ(second[0].seq(), first[0].seq());
  EXPECT_EQ(stack().connections(), 1u);
}

TEST_F(MmdsStackTest, V2TokensOverTcp) {
  options.responder.version = config::MmdsVersion::kV2;
  auto c = client(40007);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  std::string denied = c.exchange("GET /latest/meta-data/id HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(denied), 401u) << denied;
  std::string put =
      c.exchange("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 2\r\n\r\n");
  ASSERT_EQ(status_of(put), 200u) << put;
  std::string token = body_of(put);
  std::string get = "GET /latest/meta-data/id HTTP/1.1\r\nX-metadata-token: " + token + "\r\n\r\n";
  std::string ok = c.exchange(get);
  EXPECT_EQ(status_of(ok), 200u) << ok;
  EXPECT_EQ(body_of(ok), "i-123");
  // A token is good on any connection.
  auto other = client(40008);
  ASSERT_NO_FATAL_FAILURE(other.connect());
  EXPECT_EQ(status_of(other.exchange(get)), 200u);
  now += 2s;
  EXPECT_EQ(status_of(c.exchange(get)), 401u) << "expired";
  EXPECT_EQ(stack().metrics().tokens.rx_no_token.load(), 1u);
  EXPECT_EQ(stack().metrics().tokens.rx_invalid_token.load(), 1u);
}

TEST_F(MmdsStackTest, V1ServesWithoutToken) {
  auto c = client(40009);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  EXPECT_EQ(status_of(c.exchange("GET /latest/meta-data/id HTTP/1.1\r\n\r\n")), 200u);
}

TEST_F(MmdsStackTest, MalformedAndOversizedRequestsGet400AndClose) {
  auto c = client(40010);
  ASSERT_NO_FATAL_FAILURE(c.connect());
  bool fin = false;
  std::string response = c.exchange("NOT HTTP AT ALL\r\n\r\n", &fin);
  EXPECT_EQ(status_of(response), 400u) << response;
  EXPECT_TRUE(fin);

  auto big = client(40011);
  ASSERT_NO_FATAL_FAILURE(big.connect());
  std::string header = "GET / HTTP/1.1\r\nX-Pad: " + std::string(5000, 'a');
  std::string got;
  for (size_t i = 0; i < header.size(); i += 1000) {
    big.send(kTcpAck, std::string_view(header).substr(i, 1000));
    for (const Reply& r : drain()) {
      // The window shrinks as the request grows; bytes past it are not taken.
      EXPECT_LE(r.window(), TcpConnection::kMaxRequestBytes);
      if (r.seq() == big.ack && !r.payload().empty()) {
        got += r.payload();
        big.ack += static_cast<uint32_t>(r.payload().size());
      }
    }
  }
  EXPECT_EQ(status_of(got), 400u) << got;
}

TEST_F(MmdsStackTest, ClosedPortGetsReset) {
  ASSERT_TRUE(
      stack().take_frame(tcp_frame(40012, 9, 0, kTcpSyn, {}, 64240, std::nullopt, kMmdsIp, 8080)));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].valid_tcp(8080)) << "from the port the guest tried";
  EXPECT_EQ(replies[0].flags(), kTcpRst | kTcpAck);
  EXPECT_EQ(replies[0].ack(), 10u);
  EXPECT_EQ(stack().connections(), 0u);
}

TEST_F(MmdsStackTest, SegmentsOfNoConnectionAreReset) {
  ASSERT_TRUE(stack().take_frame(tcp_frame(40013, 9, 12345, kTcpAck, "data")));
  auto replies = drain();
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].flags(), kTcpRst);
  EXPECT_EQ(replies[0].seq(), 12345u);
  ASSERT_TRUE(stack().take_frame(tcp_frame(40013, 9, 12345, kTcpRst)));
  EXPECT_TRUE(drain().empty()) << "a RST is never answered";
}

TEST_F(MmdsStackTest, ConnectionLimitEvictsOnlyIdleConnections) {
  for (uint16_t i = 0; i < Stack::kMaxConnections; ++i)
    ASSERT_TRUE(stack().take_frame(tcp_frame(41000 + i, 1, 0, kTcpSyn)));
  drain();
  ASSERT_EQ(stack().connections(), Stack::kMaxConnections);
  ASSERT_TRUE(stack().take_frame(tcp_frame(42000, 1, 0, kTcpSyn)));
  auto refused = drain();
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].flags(), kTcpRst | kTcpAck);
  EXPECT_EQ(stack().metrics().connections_refused.load(), 1u);

  now += Stack::kEvictableAfter;
  ASSERT_TRUE(stack().take_frame(tcp_frame(42000, 1, 0, kTcpSyn)));
  auto replies = drain();
  // The evicted connection's RST, then the new SYN-ACK (retransmitted SYN-ACKs of the idle
  // ones may come too: they timed out).
  bool rst = false, syn_ack = false;
  for (const Reply& r : replies) {
    if (r.flags() & kTcpRst) rst = true;
    if (r.flags() == (kTcpSyn | kTcpAck) && r.dst_port() == 42000) syn_ack = true;
  }
  EXPECT_TRUE(rst);
  EXPECT_TRUE(syn_ack);
  EXPECT_EQ(stack().connections(), Stack::kMaxConnections);
}

TEST_F(MmdsStackTest, FramesNotForTheMmdsAreLeftAlone) {
  EXPECT_FALSE(
      stack().take_frame(tcp_frame(40014, 1, 0, kTcpSyn, {}, 64240, std::nullopt, 0x0a000001)));
  std::vector<uint8_t> ipv6(54, 0);
  ipv6[12] = 0x86;
  ipv6[13] = 0xdd;
  EXPECT_FALSE(stack().take_frame(ipv6));
  EXPECT_FALSE(stack().take_frame(std::vector<uint8_t>(10, 0xff)));
  EXPECT_FALSE(stack().take_frame({}));
  EXPECT_TRUE(drain().empty());
  EXPECT_EQ(stack().metrics().rx_accepted.load(), 0u);
}

TEST_F(MmdsStackTest, MalformedFramesForTheMmdsAreDropped) {
  auto good = tcp_frame(40015, 1, 0, kTcpSyn, {}, 64240, uint16_t{1460});
  std::vector<std::vector<uint8_t>> bad;
  auto truncated = good;
  truncated.resize(40);  // IP header whole, TCP header cut
  bad.push_back(truncated);
  auto short_ip = good;
  short_ip.resize(34);  // just the IP header
  bad.push_back(short_ip);
  auto ip_sum = good;
  ip_sum[24] ^= 1;
  bad.push_back(ip_sum);
  auto tcp_sum = good;
  tcp_sum[50] ^= 1;
  bad.push_back(tcp_sum);
  auto huge_total = good;  // total length 65535 in a 58-byte frame
  huge_total[16] = huge_total[17] = 0xff;
  fix_ip_sum(huge_total);
  bad.push_back(huge_total);
  auto small_ihl = good;
  small_ihl[14] = 0x44;
  fix_ip_sum(small_ihl);
  bad.push_back(small_ihl);
  auto big_offset = good;  // TCP data offset past the segment
  big_offset[46] = 0xf0;
  bad.push_back(big_offset);
  auto bad_option = good;  // MSS option claiming 40 bytes
  bad_option[55] = 40;
  bad.push_back(bad_option);
  auto fragment = good;
  fragment[20] = 0x20;  // more fragments
  fix_ip_sum(fragment);
  bad.push_back(fragment);
  auto version6 = good;
  version6[14] = 0x65;
  fix_ip_sum(version6);
  bad.push_back(version6);

  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_TRUE(stack().take_frame(bad[i])) << "frame " << i << " is addressed to the MMDS";
    EXPECT_TRUE(drain().empty()) << "frame " << i << " answered";
  }
  EXPECT_EQ(stack().connections(), 0u);
  EXPECT_EQ(stack().metrics().rx_accepted_err.load(), bad.size());

  // UDP to the MMDS: taken, unusual, unanswered.
  auto udp = good;
  udp[23] = 17;
  fix_ip_sum(udp);
  EXPECT_TRUE(stack().take_frame(udp));
  EXPECT_EQ(stack().metrics().rx_accepted_unusual.load(), 1u);
  EXPECT_TRUE(drain().empty());

  // And the intact frame works.
  EXPECT_TRUE(stack().take_frame(good));
  EXPECT_EQ(drain().size(), 1u);
}

TEST_F(MmdsStackTest, RandomCorruptionNeverCrashesOrAnswersGarbage) {
  std::mt19937 rng(1234);
  auto base = tcp_frame(40016, 1, 0, kTcpSyn | kTcpAck, "GET / HTTP/1.1\r\n\r\n");
  size_t answered = 0;
  for (int i = 0; i < 5000; ++i) {
    auto f = base;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      f[14 + rng() % (f.size() - 14)] ^= static_cast<uint8_t>(1 + rng() % 255);
    if (rng() % 4 == 0) f.resize(rng() % f.size());
    if (!stack().take_frame(f)) continue;
    answered += drain().size();
  }
  EXPECT_LE(stack().connections(), Stack::kMaxConnections);
  // Nearly every corruption breaks a checksum, so little gets through.
  EXPECT_LT(answered, 500u);
}

}  // namespace
}  // namespace ignition::mmds
