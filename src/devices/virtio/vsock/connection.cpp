#include "devices/virtio/vsock/connection.hpp"

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ignition::devices::virtio::vsock {

namespace {

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

// After reading end-of-file: did the host close the stream altogether (HUP), or only
// its sending half (shutdown(SHUT_WR)), so that it may still read the guest's reply?
bool host_hung_up(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

}  // namespace

std::unique_ptr<Connection> Connection::host_initiated(UniqueFd stream, ConnEnds ends,
                                                       const Limits& limits, StreamWatch watch) {
  return std::unique_ptr<Connection>(
      new Connection(std::move(stream), ends, limits, watch, State::LocalInit, kRequest, true));
}

std::unique_ptr<Connection> Connection::guest_initiated(UniqueFd stream, ConnEnds ends,
                                                        const Limits& limits, StreamWatch watch,
                                                        const PacketHeader& request) {
  auto conn = std::unique_ptr<Connection>(
      new Connection(std::move(stream), ends, limits, watch, State::PeerInit, kResponse, false));
  conn->peer_buf_alloc_ = request.buf_alloc;
  conn->peer_fwd_cnt_ = request.fwd_cnt;
  return conn;
}

Connection::Connection(UniqueFd stream, ConnEnds ends, const Limits& limits, StreamWatch watch,
                       State state, uint8_t pending, bool host_initiated)
    : stream_(std::move(stream)),
      ends_(ends),
      limits_(limits),
      watch_(watch),
      state_(state),
      pending_(pending),
      host_initiated_(host_initiated),
      tx_buf_(limits.conn_buffer) {
  limits_.credit_update_threshold = std::min(limits_.credit_update_threshold, limits_.conn_buffer);
}

Connection::~Connection() {
  unwatch();
}

bool Connection::may_read_host() const {
  return state_ == State::Established && !host_eof_ && !peer_no_recv_;
}

uint32_t Connection::peer_credit() const {
  // Unsigned wrap-around is the protocol's arithmetic. A driver reporting more
  // consumed than it was sent (fwd_cnt ahead of rx_cnt) gets no credit, not 4 GiB.
  uint32_t in_flight = rx_cnt_ - peer_fwd_cnt_;
  return in_flight >= peer_buf_alloc_ ? 0 : peer_buf_alloc_ - in_flight;
}

void Connection::on_guest_packet(const TxPacket& pkt) {
  const PacketHeader& h = pkt.hdr;
  if (state_ == State::Killed) return;
  peer_buf_alloc_ = h.buf_alloc;
  peer_fwd_cnt_ = h.fwd_cnt;
  switch (h.op) {
    case kOpResponse:
      if (state_ != State::LocalInit) return kill();
      state_ = State::Established;
      deadline_.reset();
      if (!send_ok_line()) kill();
      return;
    case kOpRw:
      if (state_ != State::Established || peer_no_send_) return kill();
      if (h.len == 0) return;
      // The credit we gave is exactly the room left in tx_buf_: more is a violation.
      if (h.len > tx_buf_.room()) {
        spdlog::debug("vsock {}:{}: guest sent {} bytes with {} bytes of credit", ends_.local_port,
                      ends_.peer_port, h.len, tx_buf_.room());
        return kill();
      }
      forward_to_host(pkt);
      return;
    case kOpShutdown:
      if (state_ != State::Established) return kill();
      on_guest_shutdown(h.flags);
      return;
    case kOpCreditUpdate:
      return;  // the credit fields were taken above
    case kOpCreditRequest:
      pending_ |= kCreditUpdate;
      return;
    default:  // REQUEST on a live connection, or no such op
      kill();
  }
}

bool Connection::send_ok_line() {
  std::string line = fmt::format("OK {}\n", ends_.local_port);
  ssize_t n = ::send(stream_.get(), line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n == static_cast<ssize_t>(line.size());
}

void Connection::forward_to_host(const TxPacket& pkt) {
  uint64_t written = 0;
  if (tx_buf_.empty()) {
    std::vector<iovec> iov;
    for (auto part : pkt.payload) iov.push_back({const_cast<uint8_t*>(part.data()), part.size()});
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = iov.size();
    ssize_t n = ::sendmsg(stream_.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && !would_block(errno)) return kill();
    written = n < 0 ? 0 : static_cast<uint64_t>(n);
  }
  fwd_cnt_ += static_cast<uint32_t>(written);
  // Whatever the stream did not take waits in tx_buf_, behind anything already there.
  uint64_t skip = written;
  for (auto part : pkt.payload) {
    if (skip >= part.size()) {
      skip -= part.size();
      continue;
    }
    tx_buf_.push(part.subspan(skip));
    skip = 0;
  }
  after_host_progress();
}

void Connection::flush_to_host() {
  auto flushed = tx_buf_.flush_to(stream_.get());
  if (!flushed.ok()) {
    spdlog::debug("vsock {}:{}: {}", ends_.local_port, ends_.peer_port, flushed.error().message);
    return kill();
  }
  fwd_cnt_ += *flushed;
  after_host_progress();
}

void Connection::after_host_progress() {
  if (!tx_buf_.empty()) {
    // Fall through to the credit check: the guest may be waiting for room.
  } else if (peer_no_send_) {
    if (!host_write_shut_) {
      ::shutdown(stream_.get(), SHUT_WR);  // the host reader sees end-of-file
      host_write_shut_ = true;
    }
    // The guest closed both ways and everything it sent is delivered: acknowledge.
    if (peer_no_recv_) return kill();
  }
  // What the guest believes is free vs what really is: update it before it stalls,
  // but only once the update gives it a worthwhile amount of room.
  uint32_t free_now = tx_buf_.room();
  uint32_t unannounced = fwd_cnt_ - last_fwd_cnt_sent_;
  uint32_t guest_view = free_now > unannounced ? free_now - unannounced : 0;
  if (free_now >= limits_.credit_update_threshold && guest_view < limits_.credit_update_threshold)
    pending_ |= kCreditUpdate;
}

void Connection::on_guest_shutdown(uint32_t flags) {
  if (flags & kShutdownRcv) peer_no_recv_ = true;
  if (flags & kShutdownSend) peer_no_send_ = true;
  if (peer_no_recv_ && peer_no_send_ && !tx_buf_.empty() && !deadline_)
    deadline_ = Clock::now() + limits_.shutdown_timeout;  // the host must drain it in time
  after_host_progress();
}

void Connection::on_stream_ready(uint32_t events) {
  if (state_ == State::Killed) return;
  if (events & EPOLLERR) return kill();
  if ((events & EPOLLOUT) && !tx_buf_.empty()) {
    flush_to_host();
    if (state_ == State::Killed) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP))) return;
  if (may_read_host()) {
    pending_ |= kRw;  // read when the guest has a buffer for it (and credit)
  } else if ((events & EPOLLHUP) && state_ == State::Established && host_eof_ && !host_closed_) {
    host_closed_ = true;
    pending_ |= kShutdown;
    if (!deadline_) deadline_ = Clock::now() + limits_.shutdown_timeout;
  }
}

bool Connection::read_host_into(RxPacket& pkt) {
  if (!may_read_host()) {
    pending_ &= ~kRw;
    return false;
  }
  PacketHeader& h = pkt.hdr;
  uint32_t credit = peer_credit();
  if (credit == 0) {
    // Stop reading until the guest reports room; ask it to.
    pending_ &= ~kRw;
    h.op = kOpCreditRequest;
    return true;
  }
  uint32_t max = std::min(credit, pkt.capacity());
  if (max == 0) return false;  // a header-only buffer: keep the data for a bigger one
  std::vector<iovec> iov = pkt.payload_iov(max);
  ssize_t n = ::readv(stream_.get(), iov.data(), static_cast<int>(iov.size()));
  if (n > 0) {
    rx_cnt_ += static_cast<uint32_t>(n);
    h.op = kOpRw;
    h.len = static_cast<uint32_t>(n);
    if (static_cast<uint32_t>(n) < max) pending_ &= ~kRw;  // drained for now
    return true;
  }
  pending_ &= ~kRw;
  if (n == 0) {
    host_eof_ = true;
    host_closed_ = host_hung_up(stream_.get());
    h.op = kOpShutdown;
    h.flags = kShutdownSend | (host_closed_ ? kShutdownRcv : 0);
    if (host_closed_ && !deadline_) deadline_ = Clock::now() + limits_.shutdown_timeout;
    return true;
  }
  if (!would_block(errno)) kill();
  return false;
}

bool Connection::fill_rx(RxPacket& pkt) {
  PacketHeader& h = pkt.hdr;
  h = PacketHeader{};
  h.src_cid = kHostCid;
  h.dst_cid = ends_.guest_cid;
  h.src_port = ends_.local_port;
  h.dst_port = ends_.peer_port;
  h.type = kTypeStream;
  h.buf_alloc = limits_.conn_buffer;
  h.fwd_cnt = fwd_cnt_;

  bool produced = false;
  if (pending_ & kRst) {
    // Below, together with the read attempt that may itself end in a reset.
  } else if (pending_ & kResponse) {
    pending_ &= ~kResponse;
    state_ = State::Established;
    h.op = kOpResponse;
    produced = true;
  } else if (pending_ & kRequest) {
    pending_ &= ~kRequest;
    deadline_ = Clock::now() + limits_.request_timeout;
    h.op = kOpRequest;
    produced = true;
  } else if (pending_ & kRw) {
    produced = read_host_into(pkt);
  }
  if (pending_ & kRst) {
    pending_ = 0;
    finished_ = true;
    h.op = kOpRst;
    h.len = 0;
    h.flags = 0;
    produced = true;
  } else if (!produced && (pending_ & kShutdown)) {
    pending_ &= ~kShutdown;
    h.op = kOpShutdown;
    h.flags = kShutdownRcv | kShutdownSend;
    produced = true;
  } else if (!produced && (pending_ & kCreditUpdate)) {
    h.op = kOpCreditUpdate;
    produced = true;
  }
  if (produced) {
    // Every packet carries fwd_cnt, so it doubles as a credit update.
    last_fwd_cnt_sent_ = fwd_cnt_;
    pending_ &= ~kCreditUpdate;
  }
  return produced;
}

void Connection::kill() {
  if (state_ == State::Killed) return;
  unwatch();
  stream_.reset();
  tx_buf_.clear();
  state_ = State::Killed;
  pending_ = kRst;
  deadline_.reset();
}

void Connection::expire(Clock::time_point now) {
  if (state_ == State::Killed || !deadline_ || *deadline_ > now) return;
  spdlog::debug("vsock {}:{}: timed out waiting for the guest", ends_.local_port, ends_.peer_port);
  kill();
}

void Connection::unwatch() {
  if (!watched_) return;
  ::epoll_ctl(watch_.epoll_fd, EPOLL_CTL_DEL, stream_.get(), nullptr);
  watched_.reset();
}

void Connection::update_watch() {
  if (state_ == State::Killed || !stream_.valid()) return unwatch();
  uint32_t events = 0;
  if (!tx_buf_.empty()) events |= EPOLLOUT;
  if (may_read_host() && !(pending_ & kRw) && peer_credit() > 0) events |= EPOLLIN;
  std::optional<uint32_t> want;
  if (events != 0) {
    want = events;
  } else if (state_ == State::Established && host_eof_ && !host_closed_) {
    want = 0u;  // epoll always reports HUP: learn when a half-closed host closes altogether
  }
  if (want == watched_) return;
  if (!want) return unwatch();
  epoll_event ev{};
  ev.events = *want;
  ev.data.u64 = watch_.token;
  int op = watched_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (::epoll_ctl(watch_.epoll_fd, op, stream_.get(), &ev) < 0) {
    spdlog::warn("vsock {}:{}: epoll_ctl: {}", ends_.local_port, ends_.peer_port, errno_string());
    return kill();
  }
  watched_ = want;
}

}  // namespace ignition::devices::virtio::vsock
