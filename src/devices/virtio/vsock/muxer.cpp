#include "devices/virtio/vsock/muxer.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace ignition::devices::virtio::vsock {

namespace {

constexpr size_t kMaxQueuedRsts = 256;
constexpr size_t kMaxConnectLine = 32;  // "CONNECT 4294967295\n" with room to spare
constexpr int kAcceptBatch = 16;
constexpr int kEventBatch = 64;

// "CONNECT <port>", the command word in any case (as Firecracker accepts it).
std::optional<uint32_t> parse_connect(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) words.push_back(line.substr(start, i - start));
  }
  if (words.size() != 2 || words[0].size() != 7) return std::nullopt;
  for (size_t k = 0; k < 7; ++k) {
    if (std::toupper(static_cast<unsigned char>(words[0][k])) != "CONNECT"[k]) return std::nullopt;
  }
  uint32_t port = 0;
  auto [end, ec] = std::from_chars(words[1].data(), words[1].data() + words[1].size(), port);
  if (ec != std::errc() || end != words[1].data() + words[1].size()) return std::nullopt;
  return port;
}

}  // namespace

Result<std::unique_ptr<Muxer>> Muxer::create(uint64_t guest_cid, const std::string& uds_path,
                                             const Limits& limits) {
  if (limits.conn_buffer == 0 || limits.max_connections == 0)
    return err("vsock: connection buffer and connection limit must be positive");
  IGN_ASSIGN_OR_RETURN(UnixListener listener,
                       UnixListener::listen(uds_path, {.backlog = 128, .nonblocking = true}));
  UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll.valid()) return err("vsock: epoll_create1: {}", errno_string());
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return err("vsock: timerfd_create: {}", errno_string());
  return std::unique_ptr<Muxer>(new Muxer(guest_cid, uds_path, limits, std::move(listener),
                                          std::move(epoll), std::move(timer)));
}

Muxer::~Muxer() {
  reset();
}

Result<void> Muxer::watch(int fd, uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
    return err("vsock: epoll_ctl add: {}", errno_string());
  return {};
}

Result<void> Muxer::activate() {
  if (listening_) return {};
  IGN_TRY(watch(listener_.fd(), kListenerToken));
  if (auto timer = watch(timer_.get(), kTimerToken); !timer.ok()) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener_.fd(), nullptr);
    return timer.error();
  }
  listening_ = true;
  return {};
}

void Muxer::reset(bool keep_listening) {
  conns_.clear();  // each unwatches and closes its host stream
  conn_tokens_.clear();
  for (auto& [token, h] : handshakes_)
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, h.stream.get(), nullptr);
  handshakes_.clear();
  rx_order_.clear();
  rst_queue_.clear();
  host_ports_.clear();
  last_host_port_ = kHostPortFirst - 1;
  disarm_timer();
  if (!keep_listening && listening_) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, listener_.fd(), nullptr);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, timer_.get(), nullptr);
    listening_ = false;
  }
}

size_t Muxer::buffered_bytes() const {
  size_t total = 0;
  for (const auto& [key, conn] : conns_) total += conn->buffered_bytes();
  return total;
}

void Muxer::process_events() {
  epoll_event events[kEventBatch];
  int n = ::epoll_wait(epoll_.get(), events, kEventBatch, 0);
  for (int i = 0; i < n; ++i) {
    uint64_t token = events[i].data.u64;
    if (token == kListenerToken) {
      accept_host_clients();
    } else if (token == kTimerToken) {
      uint64_t ticks = 0;
      [[maybe_unused]] ssize_t r = ::read(timer_.get(), &ticks, sizeof(ticks));
      armed_.reset();
      expire_connections();
    } else if (handshakes_.contains(token)) {
      continue_handshake(token);
    } else if (auto it = conn_tokens_.find(token); it != conn_tokens_.end()) {
      ConnKey key = it->second;
      conns_.at(key)->on_stream_ready(events[i].events);
      after_change(key);
    }
    // Anything else was removed earlier in this batch.
  }
}

void Muxer::accept_host_clients() {
  for (int i = 0; i < kAcceptBatch; ++i) {
    auto accepted = listener_.accept();
    if (!accepted.ok()) {
      spdlog::warn("vsock: {}", accepted.error().message);
      return;
    }
    if (!*accepted) return;
    UniqueFd stream = std::move(**accepted);
    if (handshakes_.size() >= limits_.max_handshakes || conns_.size() >= limits_.max_connections) {
      spdlog::warn("vsock: refusing a host connection on {}: {} connections, {} pending",
                   listener_.path(), conns_.size(), handshakes_.size());
      continue;  // closing it tells the client
    }
    uint64_t token = next_token_++;
    if (auto watched = watch(stream.get(), token); !watched.ok()) {
      spdlog::warn("{}", watched.error().message);
      continue;
    }
    handshakes_.emplace(token, Handshake{std::move(stream), {}});
  }
}

void Muxer::drop_handshake(uint64_t token) {
  auto it = handshakes_.find(token);
  if (it == handshakes_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.stream.get(), nullptr);
  handshakes_.erase(it);
}

void Muxer::continue_handshake(uint64_t token) {
  Handshake& h = handshakes_.at(token);
  int fd = h.stream.get();
  // Peek first: bytes after the newline already belong to the guest.
  char buf[kMaxConnectLine];
  ssize_t n = ::recv(fd, buf, kMaxConnectLine - h.line.size(), MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) return drop_handshake(token);  // the client went away
  auto* newline = static_cast<char*>(std::memchr(buf, '\n', static_cast<size_t>(n)));
  size_t take = newline ? static_cast<size_t>(newline - buf) + 1 : static_cast<size_t>(n);
  if (::recv(fd, buf, take, MSG_DONTWAIT) != static_cast<ssize_t>(take))
    return drop_handshake(token);
  if (!newline) {
    h.line.append(buf, take);
    if (h.line.size() >= kMaxConnectLine) {
      spdlog::warn("vsock: host client sent no CONNECT line in {} bytes", kMaxConnectLine);
      drop_handshake(token);
    }
    return;
  }
  h.line.append(buf, take - 1);
  std::optional<uint32_t> port = parse_connect(h.line);
  std::string line = std::move(h.line);
  UniqueFd stream = std::move(h.stream);
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, stream.get(), nullptr);
  handshakes_.erase(token);
  if (!port) {
    spdlog::warn("vsock: host client sent '{}', not 'CONNECT <port>'", line);
    return;  // closing the stream tells the client
  }
  open_host_connection(std::move(stream), *port);
}

uint32_t Muxer::allocate_host_port(uint32_t peer_port) {
  // At most max_connections ports are taken, so this ends quickly.
  while (true) {
    last_host_port_ = last_host_port_ + 1 >= kHostPortEnd ? kHostPortFirst : last_host_port_ + 1;
    if (!host_ports_.contains(last_host_port_) &&
        !conns_.contains(ConnKey{last_host_port_, peer_port}))
      return last_host_port_;
  }
}

void Muxer::open_host_connection(UniqueFd stream, uint32_t peer_port) {
  if (conns_.size() >= limits_.max_connections) {
    spdlog::warn("vsock: refusing a host connection to guest port {}: {} connections", peer_port,
                 conns_.size());
    return;
  }
  uint32_t local_port = allocate_host_port(peer_port);
  uint64_t token = next_token_++;
  host_ports_.insert(local_port);
  add_connection({local_port, peer_port},
                 Connection::host_initiated(std::move(stream), {guest_cid_, local_port, peer_port},
                                            limits_, {epoll_.get(), token}),
                 token);
}

void Muxer::open_guest_connection(const PacketHeader& request) {
  ConnKey key{request.dst_port, request.src_port};
  if (conns_.size() >= limits_.max_connections) {
    spdlog::debug("vsock: refusing guest connection to port {}: {} connections", key.local_port,
                  conns_.size());
    return queue_rst(key);
  }
  auto stream = connect_unix(fmt::format("{}_{}", uds_path_, request.dst_port), true);
  if (!stream.ok()) {
    spdlog::debug("vsock: guest connection to port {}: {}", key.local_port, stream.error().message);
    return queue_rst(key);
  }
  uint64_t token = next_token_++;
  add_connection(key,
                 Connection::guest_initiated(std::move(stream).value(),
                                             {guest_cid_, key.local_port, key.peer_port}, limits_,
                                             {epoll_.get(), token}, request),
                 token);
}

void Muxer::add_connection(ConnKey key, std::unique_ptr<Connection> conn, uint64_t token) {
  // Callers pick keys not in use; should one be, the newcomer is closed, not the old.
  if (!conns_.try_emplace(key, std::move(conn)).second) return;
  conn_tokens_.emplace(token, key);
  after_change(key);
}

void Muxer::remove_connection(ConnKey key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  if (it->second->queued_for_rx) std::erase(rx_order_, key);
  conn_tokens_.erase(it->second->token());
  if (it->second->host_initiated()) host_ports_.erase(key.local_port);
  conns_.erase(it);
}

void Muxer::after_change(ConnKey key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Connection& conn = *it->second;
  if (conn.finished()) return remove_connection(key);
  conn.update_watch();
  if (conn.has_pending_rx() && !conn.queued_for_rx) {
    rx_order_.push_back(key);
    conn.queued_for_rx = true;
  }
  if (auto deadline = conn.deadline(); deadline && (!armed_ || *deadline < *armed_))
    arm_timer(*deadline);
}

void Muxer::queue_rst(ConnKey key) {
  // Bounded: a guest spraying packets at closed ports loses RSTs, not host memory.
  if (rst_queue_.size() >= kMaxQueuedRsts) {
    spdlog::debug("vsock: RST queue full, dropping RST for {}:{}", key.local_port, key.peer_port);
    return;
  }
  rst_queue_.push_back(key);
}

void Muxer::on_guest_packet(const TxPacket& pkt) {
  const PacketHeader& h = pkt.hdr;
  if (h.src_cid != guest_cid_ || h.dst_cid != kHostCid) {
    spdlog::debug("vsock: dropping packet from cid {} to cid {}", h.src_cid, h.dst_cid);
    return;
  }
  ConnKey key{h.dst_port, h.src_port};
  auto it = conns_.find(key);
  if (h.type != kTypeStream) {
    if (it != conns_.end()) {
      it->second->kill();
      after_change(key);
    } else if (h.op != kOpRst) {
      queue_rst(key);
    }
    return;
  }
  if (it == conns_.end()) {
    if (h.op == kOpRequest) {
      open_guest_connection(h);
    } else if (h.op != kOpRst) {
      queue_rst(key);  // never answer an RST with an RST
    }
    return;
  }
  if (h.op == kOpRst) return remove_connection(key);
  it->second->on_guest_packet(pkt);
  after_change(key);
}

void Muxer::on_malformed_packet(const PacketHeader& h) {
  if (h.src_cid != guest_cid_ || h.dst_cid != kHostCid) return;
  ConnKey key{h.dst_port, h.src_port};
  if (auto it = conns_.find(key); it != conns_.end()) {
    it->second->kill();  // its byte stream has a hole now
    after_change(key);
  } else if (h.op != kOpRst) {
    queue_rst(key);
  }
}

bool Muxer::fill_rx(RxPacket& pkt) {
  if (!rst_queue_.empty()) {
    ConnKey key = rst_queue_.front();
    rst_queue_.pop_front();
    pkt.hdr = PacketHeader{};
    pkt.hdr.src_cid = kHostCid;
    pkt.hdr.dst_cid = guest_cid_;
    pkt.hdr.src_port = key.local_port;
    pkt.hdr.dst_port = key.peer_port;
    pkt.hdr.type = kTypeStream;
    pkt.hdr.op = kOpRst;
    return true;
  }
  // One try per connection: one that stays pending without producing anything (its
  // data needs a bigger buffer than this one) must not spin this loop.
  for (size_t tries = rx_order_.size(); tries > 0 && !rx_order_.empty(); --tries) {
    ConnKey key = rx_order_.front();
    rx_order_.pop_front();
    auto it = conns_.find(key);
    if (it == conns_.end()) continue;
    it->second->queued_for_rx = false;
    bool produced = it->second->fill_rx(pkt);
    after_change(key);  // back in line if it has more; gone if that was its RST
    if (produced) return true;
  }
  return false;
}

void Muxer::expire_connections() {
  auto now = Connection::Clock::now();
  std::vector<ConnKey> due;
  std::optional<Connection::Clock::time_point> next;
  for (const auto& [key, conn] : conns_) {
    auto deadline = conn->deadline();
    if (!deadline) continue;
    if (*deadline <= now) {
      due.push_back(key);
    } else if (!next || *deadline < *next) {
      next = deadline;
    }
  }
  for (ConnKey key : due) {
    if (auto it = conns_.find(key); it != conns_.end()) {
      it->second->expire(now);
      after_change(key);
    }
  }
  if (next && (!armed_ || *next < *armed_)) arm_timer(*next);
}

void Muxer::arm_timer(Connection::Clock::time_point deadline) {
  auto delay =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Connection::Clock::now());
  int64_t ns = std::max<int64_t>(delay.count(), 1);  // zero would disarm it
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1'000'000'000;
  spec.it_value.tv_nsec = ns % 1'000'000'000;
  if (::timerfd_settime(timer_.get(), 0, &spec, nullptr) < 0) {
    spdlog::warn("vsock: timerfd_settime: {}", errno_string());
    return;
  }
  armed_ = deadline;
}

void Muxer::disarm_timer() {
  itimerspec spec{};
  ::timerfd_settime(timer_.get(), 0, &spec, nullptr);
  armed_.reset();
}

}  // namespace ignition::devices::virtio::vsock
