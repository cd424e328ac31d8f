// The MMDS's network stack on one interface.
#include "mmds/stack.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace ignition::mmds {

namespace {

void bump(StackMetrics::Counter& c, uint64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

}  // namespace

Stack::Stack(std::shared_ptr<DataStore> store, StackOptions options)
    : store_(std::move(store)), options_(std::move(options)), iss_random_(std::random_device{}()) {}

bool Stack::is_mmds_frame(std::span<const uint8_t> head) const {
  if (auto target = peek_arp_target(head)) return *target == options_.ipv4;
  if (auto dst = peek_ipv4_destination(head)) return *dst == options_.ipv4;
  return false;
}

bool Stack::take_frame(std::span<const uint8_t> frame) {
  if (!is_mmds_frame(frame)) return false;
  bump(metrics_.rx_accepted);
  auto eth = parse_ethernet(frame);  // is_mmds_frame saw a whole header
  if (eth->ethertype == kEtherTypeArp) {
    auto arp = parse_arp_request(eth->payload);
    if (!arp.ok()) {
      bump(metrics_.rx_accepted_err);
      spdlog::debug("mmds: dropped an ARP frame: {}", arp.error().message);
      return true;
    }
    // One answer is enough, for whoever asked last (as Firecracker).
    pending_arp_ = PendingArp{arp->sender_mac, arp->sender_ip};
    return true;
  }
  auto ip = parse_ipv4(eth->payload);
  if (!ip.ok()) {
    bump(metrics_.rx_accepted_err);
    spdlog::debug("mmds: dropped an IPv4 frame: {}", ip.error().message);
    return true;
  }
  if (ip->protocol != kProtocolTcp) {
    bump(metrics_.rx_accepted_unusual);
    return true;
  }
  auto tcp = parse_tcp(*ip);
  if (!tcp.ok()) {
    bump(metrics_.rx_accepted_err);
    spdlog::debug("mmds: dropped a TCP segment: {}", tcp.error().message);
    return true;
  }
  take_tcp(eth->src, *ip, *tcp);
  return true;
}

void Stack::take_tcp(const MacAddress& src_mac, const Ipv4Packet& ip, const TcpSegment& s) {
  Peer peer{src_mac, ip.src, s.src_port};
  Clock::time_point now = options_.clock();
  if (s.dst_port != options_.port) {
    bump(metrics_.rx_accepted_err);
    return reset(peer, s);  // a closed port
  }
  auto it = std::find_if(connections_.begin(), connections_.end(), [&](const auto& c) {
    return c->peer.ip == peer.ip && c->peer.port == peer.port;
  });
  if (it != connections_.end()) {
    (*it)->peer.mac = src_mac;
    (*it)->tcp.receive(s, now, [&](const HttpRequest& request) {
      return respond(request, *store_, options_.responder, now, &metrics_.tokens);
    });
    return;
  }
  if ((s.flags & (kTcpSyn | kTcpAck | kTcpRst | kTcpFin)) == kTcpSyn) return accept(peer, s, now);
  if (!(s.flags & kTcpRst)) reset(peer, s);
}

void Stack::accept(const Peer& peer, const TcpSegment& syn, Clock::time_point now) {
  drop_done();
  if (connections_.size() >= kMaxConnections) {
    auto idle = std::find_if(connections_.begin(), connections_.end(),
                             [&](const auto& c) { return c->tcp.idle(now, kEvictableAfter); });
    if (idle == connections_.end()) {
      bump(metrics_.connections_refused);
      return reset(peer, syn);
    }
    queue_reset((*idle)->peer, options_.port, (*idle)->tcp.reset_segment());
    connections_.erase(idle);
    bump(metrics_.connections_destroyed);
  }
  connections_.push_back(std::make_unique<Connection>(
      Connection{peer, TcpConnection(syn, static_cast<uint32_t>(iss_random_()), now)}));
  bump(metrics_.connections_created);
}

void Stack::reset(const Peer& peer, const TcpSegment& s) {
  OutSegment rst;
  if (s.flags & kTcpAck) {
    rst.seq = s.ack;
    rst.flags = kTcpRst;
  } else {
    uint32_t len = static_cast<uint32_t>(s.payload.size()) + ((s.flags & kTcpSyn) ? 1 : 0) +
                   ((s.flags & kTcpFin) ? 1 : 0);
    rst.ack = s.seq + len;
    rst.flags = kTcpRst | kTcpAck;
  }
  queue_reset(peer, s.dst_port, rst);
}

void Stack::queue_reset(const Peer& peer, uint16_t local_port, const OutSegment& segment) {
  if (resets_.size() >= kMaxPendingResets) return;
  resets_.push_back({peer, local_port, segment});
}

size_t Stack::next_frame(std::span<uint8_t> out) {
  if (pending_arp_) {
    PendingArp to = *pending_arp_;
    pending_arp_.reset();
    if (size_t n = write_arp_reply(out, options_.mac, options_.ipv4, to.mac, to.ip)) {
      bump(metrics_.tx_frames);
      bump(metrics_.tx_bytes, n);
      return n;
    }
    bump(metrics_.tx_errors);
  }
  while (!resets_.empty()) {
    PendingReset rst = resets_.front();
    resets_.pop_front();
    if (size_t n = write(out, rst.peer, rst.local_port, rst.segment)) return n;
  }
  Clock::time_point now = options_.clock();
  drop_done();
  for (size_t i = 0; i < connections_.size(); ++i) {
    size_t index = (next_connection_ + i) % connections_.size();
    Connection& c = *connections_[index];
    while (auto segment = c.tcp.next_segment(now)) {
      if (size_t n = write(out, c.peer, options_.port, *segment)) {
        next_connection_ = index + 1;
        return n;
      }
    }
  }
  drop_done();
  return 0;
}

size_t Stack::write(std::span<uint8_t> out, const Peer& peer, uint16_t local_port,
                    const OutSegment& segment) {
  TcpFrameSpec spec;
  spec.src_mac = options_.mac;
  spec.dst_mac = peer.mac;
  spec.src_ip = options_.ipv4;
  spec.dst_ip = peer.ip;
  spec.ip_id = ip_id_++;
  spec.src_port = local_port;
  spec.dst_port = peer.port;
  spec.seq = segment.seq;
  spec.ack = segment.ack;
  spec.flags = segment.flags;
  spec.window = segment.window;
  spec.mss = segment.mss;
  size_t n = write_tcp_frame(out, spec, segment.payload);
  if (n == 0) {
    bump(metrics_.tx_errors);
    return 0;
  }
  bump(metrics_.tx_frames);
  bump(metrics_.tx_bytes, n);
  return n;
}

void Stack::drop_done() {
  size_t before = connections_.size();
  std::erase_if(connections_, [](const auto& c) { return c->tcp.done(); });
  bump(metrics_.connections_destroyed, before - connections_.size());
}

}  // namespace ignition::mmds
