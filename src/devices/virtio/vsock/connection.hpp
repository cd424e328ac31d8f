// One vsock stream between a guest port and a host Unix stream: the connection state
// machine, credit-based flow control in both directions, and the relaying of bytes.
// The guest is untrusted: any protocol violation resets the connection (RST), and the
// guest can never make the device buffer more than the space it was offered.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "base/fd.hpp"
#include "devices/virtio/vsock/limits.hpp"
#include "devices/virtio/vsock/packet.hpp"
#include "devices/virtio/vsock/tx_buffer.hpp"

namespace ignition::devices::virtio::vsock {

// The two ends of a connection: the host side is (kHostCid, local_port).
struct ConnEnds {
  uint64_t guest_cid;
  uint32_t local_port;
  uint32_t peer_port;  // the guest's port
};

// Where the connection's host stream is watched: an epoll set, and the token its events
// carry back to the owner.
struct StreamWatch {
  int epoll_fd;
  uint64_t token;
};

class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  // A host process connected to uds_path and asked for guest port `ends.peer_port`:
  // the guest is sent a REQUEST; its RESPONSE makes the host stream read "OK <port>\n".
  static std::unique_ptr<Connection> host_initiated(UniqueFd stream, ConnEnds ends,
                                                    const Limits& limits, StreamWatch watch);
  // The guest's REQUEST reached a host listener through `stream`: answer with RESPONSE.
  static std::unique_ptr<Connection> guest_initiated(UniqueFd stream, ConnEnds ends,
                                                     const Limits& limits, StreamWatch watch,
                                                     const PacketHeader& request);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // A guest packet for this connection (the owner handles RST itself).
  void on_guest_packet(const TxPacket& pkt);
  // The host stream is ready (epoll events).
  void on_stream_ready(uint32_t events);
  // Puts the next packet for the guest into `pkt`; false when there is nothing to send.
  bool fill_rx(RxPacket& pkt);
  // Closes the host stream now and leaves only an RST for the guest.
  void kill();
  // Resets the connection if its deadline (unanswered REQUEST, unacknowledged
  // shutdown) has passed.
  void expire(Clock::time_point now);
  // Brings the epoll registration of the host stream in line with what the
  // connection can handle now; call after every change. Resets the connection if
  // epoll refuses.
  void update_watch();

  bool host_initiated() const { return host_initiated_; }
  uint64_t token() const { return watch_.token; }
  bool has_pending_rx() const { return pending_ != 0; }
  // The RST went out: nothing is left to do and the owner drops the connection.
  bool finished() const { return finished_; }
  std::optional<Clock::time_point> deadline() const { return deadline_; }
  size_t buffered_bytes() const { return tx_buf_.size(); }

  bool queued_for_rx = false;  // owner bookkeeping: already in its rx round-robin

 private:
  enum class State { LocalInit, PeerInit, Established, Killed };
  enum PendingRx : uint8_t {
    kRequest = 1,
    kResponse = 2,
    kRst = 4,
    kRw = 8,         // the host stream may have bytes for the guest
    kShutdown = 16,  // tell the guest the host stream is fully closed
    kCreditUpdate = 32,
  };

  Connection(UniqueFd stream, ConnEnds ends, const Limits& limits, StreamWatch watch, State state,
             uint8_t pending, bool host_initiated);

  bool may_read_host() const;
  uint32_t peer_credit() const;
  void forward_to_host(const TxPacket& pkt);
  void flush_to_host();
  void after_host_progress();
  void on_guest_shutdown(uint32_t flags);
  bool read_host_into(RxPacket& pkt);
  bool send_ok_line();
  void unwatch();

  UniqueFd stream_;
  ConnEnds ends_;
  Limits limits_;
  StreamWatch watch_;
  std::optional<uint32_t> watched_;  // events registered in the epoll set, if registered
  State state_;
  uint8_t pending_;
  bool host_initiated_;
  bool finished_ = false;
  std::optional<Clock::time_point> deadline_;

  // Guest -> host.
  TxBuffer tx_buf_;
  uint32_t fwd_cnt_ = 0;            // bytes handed to the host stream
  uint32_t last_fwd_cnt_sent_ = 0;  // fwd_cnt the guest last heard of
  bool peer_no_send_ = false;       // guest SHUTDOWN SEND
  bool host_write_shut_ = false;    // we passed that on with shutdown(SHUT_WR)

  // Host -> guest.
  uint32_t rx_cnt_ = 0;  // bytes sent to the guest
  uint32_t peer_buf_alloc_ = 0;
  uint32_t peer_fwd_cnt_ = 0;
  bool peer_no_recv_ = false;  // guest SHUTDOWN RCV
  bool host_eof_ = false;      // the host stream read end-of-file
  bool host_closed_ = false;   // ... and the host closed it altogether
};

}  // namespace ignition::devices::virtio::vsock
