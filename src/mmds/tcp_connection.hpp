// One guest connection to the MMDS's port, from its SYN to the close: a small passive-open
// TCP (no window scaling, SACK, timestamps or urgent data) that reads HTTP requests and
// writes their responses. One request is answered at a time; the next is read once the
// guest has acknowledged the whole previous response.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "mmds/frames.hpp"
#include "mmds/http.hpp"

namespace ignition::mmds {

// A segment for the stack to wrap in a frame; `payload` points into the connection.
struct OutSegment {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<uint16_t> mss;
  std::span<const uint8_t> payload;
};

class TcpConnection {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // The most request bytes buffered (Firecracker takes 2500): the receive window.
  static constexpr size_t kMaxRequestBytes = 4096;
  // The largest segment we send, and what our SYN-ACK announces.
  static constexpr uint16_t kMaxSegment = 1460;
  static constexpr Clock::duration kInitialRto = std::chrono::milliseconds(500);
  static constexpr Clock::duration kMaxRto = std::chrono::seconds(8);
  static constexpr unsigned kMaxRetransmits = 8;

  // Answers `syn` (the caller checked it is a bare SYN) with `iss` as our first sequence.
  TcpConnection(const TcpSegment& syn, uint32_t iss, Clock::time_point now);

  // A segment of this connection from the guest. `handler` answers the requests it completes.
  void receive(const TcpSegment& segment, Clock::time_point now, const Handler& handler);
  // The next segment to send, if any; call until nullopt. Retransmits on timeouts, checked
  // here (there is no timer: the guest's traffic drives the MMDS).
  std::optional<OutSegment> next_segment(Clock::time_point now);

  // Closed (reset, or both FINs acknowledged) with nothing left to send: forget it.
  bool done() const { return closed_ || (fin_acked_ && fin_received_ && !ack_due_); }
  // Nothing received for `idle`: may make room for a new connection.
  bool idle(Clock::time_point now, Clock::duration idle) const {
    return now - last_received_ >= idle;
  }
  // A RST to send when the connection is dropped to make room.
  OutSegment reset_segment() const;

 private:
  // Something sent and not acknowledged, or data the guest's window holds back: the
  // retransmission timer runs.
  bool outstanding() const {
    return !established_ || snd_max_ != snd_una_ || (!tx_.empty() && snd_wnd_ == 0);
  }
  uint16_t window() const;
  // False when the segment must be dropped (it acknowledges what was never sent).
  bool take_ack(const TcpSegment& s, Clock::time_point now);
  void take_data(const TcpSegment& s);
  void answer_requests(const Handler& handler);
  void arm_timer(Clock::time_point now);
  OutSegment segment(uint8_t flags);

  // Sequence numbers (RFC 793 names). The response bytes not yet acknowledged start at
  // snd_una_; our FIN, once queued, follows them.
  uint32_t iss_;
  uint32_t snd_una_;
  uint32_t snd_nxt_;
  uint32_t snd_max_;  // highest sent, even after going back to retransmit
  uint32_t snd_wnd_;
  uint16_t mss_;
  uint32_t irs_;
  uint32_t rcv_nxt_;

  bool established_ = false;
  bool syn_ack_due_ = true;
  bool ack_due_ = false;
  bool fin_received_ = false;
  bool closing_ = false;  // our FIN goes after the data in tx_
  bool fin_acked_ = false;
  bool reset_due_ = false;
  bool probe_due_ = false;  // the window is shut: send one byte past it to learn when it opens
  bool closed_ = false;
  unsigned dup_acks_ = 0;
  uint16_t last_window_ = 0;  // the window last advertised

  RequestReader reader_{kMaxRequestBytes};
  std::string tx_;  // response bytes from snd_una_ on

  Clock::time_point last_received_;
  std::optional<Clock::time_point> rto_deadline_;
  Clock::duration rto_ = kInitialRto;
  unsigned retransmits_ = 0;
};

}  // namespace ignition::mmds
