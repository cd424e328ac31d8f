// The MMDS's TCP connections.
#include "mmds/tcp_connection.hpp"

#include <algorithm>

namespace ignition::mmds {

namespace {

// Without an MSS option a peer takes 536-byte segments (RFC 1122); Linux sends no less than 88.
constexpr uint16_t kDefaultMss = 536;
constexpr uint16_t kMinMss = 88;

// a - b in sequence space: positive when a is after b.
int32_t seq_diff(uint32_t a, uint32_t b) {
  return static_cast<int32_t>(a - b);
}

}  // namespace

TcpConnection::TcpConnection(const TcpSegment& syn, uint32_t iss, Clock::time_point now)
    : iss_(iss),
      snd_una_(iss),
      snd_nxt_(iss),
      snd_max_(iss),
      snd_wnd_(syn.window),
      mss_(std::clamp(syn.mss.value_or(kDefaultMss), kMinMss, kMaxSegment)),
      irs_(syn.seq),
      rcv_nxt_(syn.seq + 1),
      last_received_(now) {}

void TcpConnection::receive(const TcpSegment& s, Clock::time_point now, const Handler& handler) {
  if (closed_ || reset_due_) return;
  last_received_ = now;
  if (s.flags & kTcpRst) {
    // Only a reset at the edge of the window counts, so a stray one cannot end the connection.
    int32_t off = seq_diff(s.seq, rcv_nxt_);
    if (off >= 0 && off <= window()) closed_ = true;
    return;
  }
  if (!established_) {
    if (s.flags & kTcpSyn) {
      if (s.seq == irs_) syn_ack_due_ = true;  // the guest did not get our SYN-ACK
      return;
    }
    if (!(s.flags & kTcpAck) || s.ack != iss_ + 1) return;
    established_ = true;
    snd_una_ = snd_nxt_ = snd_max_ = iss_ + 1;
    snd_wnd_ = s.window;
    retransmits_ = 0;
    rto_ = kInitialRto;
    rto_deadline_.reset();
  } else if (s.flags & kTcpSyn) {
    ack_due_ = true;  // a SYN inside the connection: tell the guest where we are
    return;
  }
  if (!(s.flags & kTcpAck)) return;
  if (!take_ack(s, now)) return;
  take_data(s);
  answer_requests(handler);
}

bool TcpConnection::take_ack(const TcpSegment& s, Clock::time_point now) {
  if (seq_diff(s.ack, snd_max_) > 0) {
    ack_due_ = true;  // acknowledges what we never sent
    return false;
  }
  int32_t acked = seq_diff(s.ack, snd_una_);
  if (acked < 0) return true;  // an old acknowledgement; its data may still be new
  bool same_window = s.window == snd_wnd_;
  snd_wnd_ = s.window;
  if (acked > 0) {
    if (closing_ && static_cast<size_t>(acked) == tx_.size() + 1) fin_acked_ = true;
    tx_.erase(0, std::min<size_t>(static_cast<size_t>(acked), tx_.size()));
    snd_una_ = s.ack;
    if (seq_diff(snd_nxt_, snd_una_) < 0) snd_nxt_ = snd_una_;
    dup_acks_ = 0;
    retransmits_ = 0;
    rto_ = kInitialRto;
    rto_deadline_.reset();
    probe_due_ = false;
  } else if (s.payload.empty() && !(s.flags & kTcpFin) && same_window && snd_max_ != snd_una_) {
    if (++dup_acks_ == 3) snd_nxt_ = snd_una_;  // fast retransmit: go back to the hole
  }
  if (outstanding()) arm_timer(now);
  return true;
}

void TcpConnection::take_data(const TcpSegment& s) {
  bool fin = s.flags & kTcpFin;
  std::span<const uint8_t> data = s.payload;
  if (data.empty() && !fin) return;
  int32_t off = seq_diff(rcv_nxt_, s.seq);  // how much of it we already have
  if (off < 0) {
    ack_due_ = true;  // a gap before it: repeat where we are
    return;
  }
  if (off > 0) {
    size_t old = std::min<size_t>(static_cast<size_t>(off), data.size());
    data = data.subspan(old);
    ack_due_ = true;
    if (static_cast<size_t>(off) > old) return;  // its FIN is old too
  }
  if (fin_received_) {
    ack_due_ = true;  // nothing comes after a FIN
    return;
  }
  size_t took = reader_.append(data);
  rcv_nxt_ += static_cast<uint32_t>(took);
  if (!data.empty()) ack_due_ = true;
  if (fin && took == data.size()) {
    rcv_nxt_ += 1;
    fin_received_ = true;
    ack_due_ = true;
  }
}

void TcpConnection::answer_requests(const Handler& handler) {
  uint16_t before = window();
  while (!closing_ && tx_.empty()) {
    auto next = reader_.next();
    if (!next.ok()) {
      HttpResponse bad{400, "text/plain", next.error().message, {}};
      tx_ = serialize(bad, 11, false);
      closing_ = true;
      break;
    }
    if (!*next) break;
    const HttpRequest& request = **next;
    tx_ = serialize(handler(request), request.version, request.keep_alive);
    if (!request.keep_alive) closing_ = true;
  }
  // The guest sends no more: answer what it asked, then close.
  if (fin_received_) closing_ = true;
  // A window that opened from (nearly) shut is news the guest may be waiting for.
  if (last_window_ < mss_ && window() > before) ack_due_ = true;
}

std::optional<OutSegment> TcpConnection::next_segment(Clock::time_point now) {
  if (closed_) return std::nullopt;
  if (reset_due_) {
    closed_ = true;
    return reset_segment();
  }
  if (rto_deadline_ && now >= *rto_deadline_) {
    rto_deadline_.reset();
    if (++retransmits_ > kMaxRetransmits) {
      closed_ = true;
      return reset_segment();
    }
    rto_ = std::min(rto_ * 2, kMaxRto);
    if (!established_) {
      syn_ack_due_ = true;
    } else {
      snd_nxt_ = snd_una_;  // go back N: everything unacknowledged goes again
      if (snd_wnd_ == 0) probe_due_ = true;
    }
  }
  if (!established_) {
    if (!syn_ack_due_) return std::nullopt;
    syn_ack_due_ = false;
    snd_nxt_ = iss_;
    OutSegment syn_ack = segment(kTcpSyn | kTcpAck);
    syn_ack.mss = kMaxSegment;
    snd_nxt_ = snd_max_ = iss_ + 1;
    arm_timer(now);
    return syn_ack;
  }
  size_t sent = static_cast<size_t>(seq_diff(snd_nxt_, snd_una_));
  if (sent < tx_.size()) {
    int64_t usable = int64_t{snd_wnd_} - static_cast<int64_t>(sent);
    if (usable <= 0 && probe_due_) usable = 1;
    if (usable > 0) {
      size_t len = std::min({tx_.size() - sent, static_cast<size_t>(usable), size_t{mss_}});
      OutSegment out = segment(kTcpAck | (sent + len == tx_.size() ? kTcpPsh : 0));
      out.payload = std::span(reinterpret_cast<const uint8_t*>(tx_.data()) + sent, len);
      snd_nxt_ += static_cast<uint32_t>(len);
      if (seq_diff(snd_nxt_, snd_max_) > 0) snd_max_ = snd_nxt_;
      probe_due_ = false;
      arm_timer(now);
      return out;
    }
  } else if (closing_ && !fin_acked_ && sent == tx_.size()) {
    OutSegment fin = segment(kTcpFin | kTcpAck);
    snd_nxt_ += 1;
    if (seq_diff(snd_nxt_, snd_max_) > 0) snd_max_ = snd_nxt_;
    arm_timer(now);
    return fin;
  }
  if (outstanding()) arm_timer(now);
  if (ack_due_) return segment(kTcpAck);
  return std::nullopt;
}

OutSegment TcpConnection::reset_segment() const {
  OutSegment rst;
  rst.seq = snd_nxt_;
  rst.ack = rcv_nxt_;
  rst.flags = kTcpRst | kTcpAck;
  return rst;
}

uint16_t TcpConnection::window() const {
  return static_cast<uint16_t>(std::min<size_t>(reader_.room(), 0xffff));
}

void TcpConnection::arm_timer(Clock::time_point now) {
  if (!rto_deadline_) rto_deadline_ = now + rto_;
}

OutSegment TcpConnection::segment(uint8_t flags) {
  OutSegment out;
  out.seq = snd_nxt_;
  out.ack = rcv_nxt_;
  out.flags = flags;
  out.window = window();
  last_window_ = out.window;
  ack_due_ = false;
  return out;
}

}  // namespace ignition::mmds
