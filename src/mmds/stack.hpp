// The MMDS's network stack on one interface, as Firecracker's MmdsNetworkStack: it takes the
// guest's frames for the MMDS's address off the TX path (ARP requests, TCP to port 80) and
// has the answers for the guest's RX path. Used from the thread that runs the net device.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <vector>

#include "mmds/data_store.hpp"
#include "mmds/frames.hpp"
#include "mmds/responder.hpp"
#include "mmds/tcp_connection.hpp"

namespace ignition::mmds {

// Firecracker's MMDS MAC address: the one ARP replies give for the MMDS's IPv4 address.
inline constexpr MacAddress kDefaultMmdsMac = {0x06, 0x01, 0x23, 0x45, 0x67, 0x01};

struct StackOptions {
  uint32_t ipv4 = 0xa9fea9fe;  // 169.254.169.254
  MacAddress mac = kDefaultMmdsMac;
  uint16_t port = 80;
  ResponderOptions responder{};
  // Time for tokens and retransmissions; tests move it by hand.
  std::function<DataStore::Clock::time_point()> clock = [] { return DataStore::Clock::now(); };
};

// Firecracker's "mmds" metrics, per interface.
struct StackMetrics {
  using Counter = std::atomic<uint64_t>;
  Counter rx_accepted{0};          // frames for the MMDS taken off the TX path
  Counter rx_accepted_err{0};      // of those, dropped: malformed, bad checksum, refused
  Counter rx_accepted_unusual{0};  // of those, neither ARP nor TCP (ICMP, UDP, ...)
  Counter tx_frames{0};            // frames handed to the guest
  Counter tx_bytes{0};
  Counter tx_errors{0};  // frames that did not fit the device's buffer
  Counter connections_created{0};
  Counter connections_destroyed{0};
  Counter connections_refused{0};  // SYNs answered with RST: every slot busy
  TokenCounters tokens;
};

class Stack {
 public:
  using Clock = DataStore::Clock;

  static constexpr size_t kMaxConnections = 30;     // as Firecracker
  static constexpr size_t kMaxPendingResets = 100;  // as Firecracker
  // A connection this idle may be dropped for a new one when every slot is taken.
  static constexpr Clock::duration kEvictableAfter = std::chrono::seconds(10);

  Stack(std::shared_ptr<DataStore> store, StackOptions options);

  // Whether a frame (or its first bytes) is for the MMDS: ARP for its address, or IPv4 to it.
  bool is_mmds_frame(std::span<const uint8_t> head) const;
  // Takes a guest frame. False when it is not for the MMDS (it goes to the TAP); true when
  // it was, answered or dropped as malformed.
  bool take_frame(std::span<const uint8_t> frame);
  // Writes the next frame for the guest into `out`; its size, or 0 when there is none.
  size_t next_frame(std::span<uint8_t> out);

  size_t connections() const { return connections_.size(); }
  const StackMetrics& metrics() const { return metrics_; }
  const StackOptions& options() const { return options_; }

 private:
  struct Peer {
    MacAddress mac{};
    uint32_t ip = 0;
    uint16_t port = 0;
  };
  struct Connection {
    Peer peer;
    TcpConnection tcp;
  };
  struct PendingArp {
    MacAddress mac{};
    uint32_t ip = 0;
  };
  struct PendingReset {
    Peer peer;
    uint16_t local_port = 0;  // the port the guest tried, not always ours
    OutSegment segment;
  };

  void take_tcp(const MacAddress& src_mac, const Ipv4Packet& ip, const TcpSegment& s);
  void accept(const Peer& peer, const TcpSegment& syn, Clock::time_point now);
  // RFC 793's answer to a segment no connection wants.
  void reset(const Peer& peer, const TcpSegment& s);
  void queue_reset(const Peer& peer, uint16_t local_port, const OutSegment& segment);
  size_t write(std::span<uint8_t> out, const Peer& peer, uint16_t local_port,
               const OutSegment& segment);
  void drop_done();

  std::shared_ptr<DataStore> store_;
  StackOptions options_;
  std::optional<PendingArp> pending_arp_;
  std::deque<PendingReset> resets_;
  std::vector<std::unique_ptr<Connection>> connections_;
  size_t next_connection_ = 0;  // round robin among connections with something to send
  uint16_t ip_id_ = 0;
  std::mt19937 iss_random_;
  StackMetrics metrics_;
};

}  // namespace ignition::mmds
