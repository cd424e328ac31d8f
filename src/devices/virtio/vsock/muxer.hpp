// The host side of a vsock device (Firecracker's "hybrid" Unix-socket backend): routes
// guest packets to connections keyed by (local port, guest port), accepts host clients
// on uds_path ("CONNECT <port>\n"), connects guest requests to "<uds_path>_<port>", and
// decides which packet the guest gets next.
//
// Host sockets and the timer live in the muxer's own epoll set; the VMM's event loop
// watches only that one fd. Connections come and go from whatever thread drives the
// device (activation and reset run on vCPU threads), and a kernel epoll set is safe to
// change from any thread where the VMM's loop is not.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "base/unix_listener.hpp"
#include "devices/virtio/vsock/connection.hpp"
#include "devices/virtio/vsock/limits.hpp"
#include "devices/virtio/vsock/packet.hpp"

namespace ignition::devices::virtio::vsock {

struct ConnKey {
  uint32_t local_port;
  uint32_t peer_port;
  auto operator<=>(const ConnKey&) const = default;
};

class Muxer {
 public:
  // Binds the listener at `uds_path` (see UnixListener::listen).
  static Result<std::unique_ptr<Muxer>> create(uint64_t guest_cid, const std::string& uds_path,
                                               const Limits& limits);
  ~Muxer();
  Muxer(const Muxer&) = delete;
  Muxer& operator=(const Muxer&) = delete;

  // Readable whenever process_events() has something to do.
  int epoll_fd() const { return epoll_.get(); }
  // The driver is up: start accepting host clients. Until then they wait in the backlog.
  Result<void> activate();
  // Closes every connection and pending host client without telling the guest, and
  // (unless keep_listening) stops accepting until the next activate().
  void reset(bool keep_listening = false);

  // A well-formed packet from the tx queue.
  void on_guest_packet(const TxPacket& pkt);
  // A tx packet whose header was readable but whose payload was not (bad length):
  // resets the connection it names.
  void on_malformed_packet(const PacketHeader& hdr);
  // Handles ready host sockets and expired deadlines.
  void process_events();

  bool has_pending_rx() const { return !rst_queue_.empty() || !rx_order_.empty(); }
  // Fills `pkt` with the next packet for the guest; false when there is none now.
  bool fill_rx(RxPacket& pkt);

  size_t connection_count() const { return conns_.size(); }
  size_t pending_handshakes() const { return handshakes_.size(); }
  // Sum of guest-to-host bytes waiting for slow host readers.
  size_t buffered_bytes() const;

 private:
  static constexpr uint64_t kListenerToken = 0;
  static constexpr uint64_t kTimerToken = 1;
  // Host-initiated connections get local ports from [2^30, 2^31), as in Firecracker.
  static constexpr uint32_t kHostPortFirst = 1u << 30;
  static constexpr uint32_t kHostPortEnd = 1u << 31;

  struct Handshake {
    UniqueFd stream;
    std::string line;  // "CONNECT <port>" as received so far
  };

  Muxer(uint64_t guest_cid, std::string uds_path, const Limits& limits, UnixListener listener,
        UniqueFd epoll, UniqueFd timer)
      : guest_cid_(guest_cid),
        uds_path_(std::move(uds_path)),
        limits_(limits),
        listener_(std::move(listener)),
        epoll_(std::move(epoll)),
        timer_(std::move(timer)) {}

  void accept_host_clients();
  void continue_handshake(uint64_t token);
  void drop_handshake(uint64_t token);
  void open_host_connection(UniqueFd stream, uint32_t peer_port);
  void open_guest_connection(const PacketHeader& request);
  void add_connection(ConnKey key, std::unique_ptr<Connection> conn, uint64_t token);
  void remove_connection(ConnKey key);
  // After anything touched `key`: drop it if done, re-arm its epoll watch, schedule its rx.
  void after_change(ConnKey key);
  void queue_rst(ConnKey key);
  void expire_connections();
  // Makes the timer fire by `deadline` (it may then fire early: that is harmless).
  void arm_timer(Connection::Clock::time_point deadline);
  void disarm_timer();
  uint32_t allocate_host_port(uint32_t peer_port);
  Result<void> watch(int fd, uint64_t token);

  uint64_t guest_cid_;
  std::string uds_path_;
  Limits limits_;
  UnixListener listener_;
  UniqueFd epoll_;
  UniqueFd timer_;  // fires at the earliest connection deadline
  bool listening_ = false;
  std::optional<Connection::Clock::time_point> armed_;  // when the timer fires next

  std::map<ConnKey, std::unique_ptr<Connection>> conns_;
  std::unordered_map<uint64_t, ConnKey> conn_tokens_;   // epoll token -> connection
  std::unordered_map<uint64_t, Handshake> handshakes_;  // epoll token -> host client
  uint64_t next_token_ =
      kTimerToken + 1;             // tokens are never reused, so a stale event finds nothing
  std::deque<ConnKey> rx_order_;   // connections with packets for the guest, round-robin
  std::deque<ConnKey> rst_queue_;  // RSTs for packets that matched no connection
  std::set<uint32_t> host_ports_;  // local ports handed to host-initiated connections
  uint32_t last_host_port_ = kHostPortFirst - 1;
};

}  // namespace ignition::devices::virtio::vsock
