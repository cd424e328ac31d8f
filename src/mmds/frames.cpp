// Ethernet, ARP, IPv4 and TCP parsing and building for the MMDS.
#include "mmds/frames.hpp"

#include <algorithm>
#include <cstring>

#include "devices/virtio/net/checksum.hpp"

namespace ignition::mmds {

namespace {

using devices::virtio::net::checksum_add;
using devices::virtio::net::checksum_finish;

uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t get32(const uint8_t* p) {
  return uint32_t{get16(p)} << 16 | get16(p + 2);
}
void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

constexpr uint16_t kArpHardwareEthernet = 1;
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;
constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4FragmentOffset = 0x1fff;
constexpr uint8_t kTcpOptionEnd = 0;
constexpr uint8_t kTcpOptionNop = 1;
constexpr uint8_t kTcpOptionMss = 2;

// The pseudo-header every TCP checksum starts from.
uint32_t pseudo_header_sum(uint32_t src, uint32_t dst, size_t tcp_length) {
  uint8_t pseudo[12];
  put32(pseudo, src);
  put32(pseudo + 4, dst);
  pseudo[8] = 0;
  pseudo[9] = kProtocolTcp;
  put16(pseudo + 10, static_cast<uint16_t>(tcp_length));
  return checksum_add(0, pseudo);
}

Result<std::optional<uint16_t>> parse_tcp_options(std::span<const uint8_t> options) {
  std::optional<uint16_t> mss;
  size_t i = 0;
  while (i < options.size()) {
    uint8_t kind = options[i];
    if (kind == kTcpOptionEnd) break;
    if (kind == kTcpOptionNop) {
      ++i;
      continue;
    }
    if (i + 1 >= options.size()) return err("TCP option {} has no length", kind);
    uint8_t len = options[i + 1];
    if (len < 2 || i + len > options.size()) return err("TCP option {} has length {}", kind, len);
    if (kind == kTcpOptionMss) {
      if (len != 4) return err("TCP MSS option has length {}", len);
      mss = get16(&options[i + 2]);
    }
    i += len;
  }
  return mss;
}

}  // namespace

std::optional<EthernetFrame> parse_ethernet(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderSize) return std::nullopt;
  EthernetFrame eth;
  std::copy_n(frame.data(), 6, eth.dst.begin());
  std::copy_n(frame.data() + 6, 6, eth.src.begin());
  eth.ethertype = get16(frame.data() + 12);
  eth.payload = frame.subspan(kEthernetHeaderSize);
  return eth;
}

std::optional<uint32_t> peek_arp_target(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderSize + kArpSize) return std::nullopt;
  if (get16(frame.data() + 12) != kEtherTypeArp) return std::nullopt;
  return get32(frame.data() + kEthernetHeaderSize + 24);
}

std::optional<uint32_t> peek_ipv4_destination(std::span<const uint8_t> frame) {
  if (frame.size() < kEthernetHeaderSize + kIpv4HeaderSize) return std::nullopt;
  if (get16(frame.data() + 12) != kEtherTypeIpv4) return std::nullopt;
  return get32(frame.data() + kEthernetHeaderSize + 16);
}

Result<ArpRequest> parse_arp_request(std::span<const uint8_t> p) {
  if (p.size() < kArpSize) return err("ARP packet of {} bytes", p.size());
  if (get16(&p[0]) != kArpHardwareEthernet || get16(&p[2]) != kEtherTypeIpv4 || p[4] != 6 ||
      p[5] != 4)
    return err("ARP packet not for IPv4 over Ethernet");
  if (get16(&p[6]) != kArpRequest) return err("ARP operation {} is not a request", get16(&p[6]));
  ArpRequest req;
  std::copy_n(&p[8], 6, req.sender_mac.begin());
  req.sender_ip = get32(&p[14]);
  req.target_ip = get32(&p[24]);
  return req;
}

Result<Ipv4Packet> parse_ipv4(std::span<const uint8_t> p) {
  if (p.size() < kIpv4HeaderSize) return err("IPv4 packet of {} bytes", p.size());
  if (p[0] >> 4 != 4) return err("IP version {}", p[0] >> 4);
  size_t header = size_t{p[0] & 0xfu} * 4;
  size_t total = get16(&p[2]);
  if (header < kIpv4HeaderSize || header > total || total > p.size())
    return err("IPv4 header length {}, total length {}, in {} bytes", header, total, p.size());
  if (checksum_finish(checksum_add(0, p.first(header))) != 0) return err("bad IPv4 checksum");
  if (get16(&p[6]) & (kIpv4MoreFragments | kIpv4FragmentOffset)) return err("IPv4 fragment");
  Ipv4Packet packet;
  packet.protocol = p[9];
  packet.src = get32(&p[12]);
  packet.dst = get32(&p[16]);
  packet.payload = p.subspan(header, total - header);
  return packet;
}

Result<TcpSegment> parse_tcp(const Ipv4Packet& packet) {
  std::span<const uint8_t> p = packet.payload;
  if (p.size() < kTcpHeaderSize) return err("TCP segment of {} bytes", p.size());
  size_t header = static_cast<size_t>(p[12] >> 4) * 4;
  if (header < kTcpHeaderSize || header > p.size())
    return err("TCP header length {} in {} bytes", header, p.size());
  uint32_t sum = checksum_add(pseudo_header_sum(packet.src, packet.dst, p.size()), p);
  if (checksum_finish(sum) != 0) return err("bad TCP checksum");
  IGN_ASSIGN_OR_RETURN(auto mss,
                       parse_tcp_options(p.subspan(kTcpHeaderSize, header - kTcpHeaderSize)));
  TcpSegment s;
  s.src_port = get16(&p[0]);
  s.dst_port = get16(&p[2]);
  s.seq = get32(&p[4]);
  s.ack = get32(&p[8]);
  s.flags = p[13];
  s.window = get16(&p[14]);
  s.mss = mss;
  s.payload = p.subspan(header);
  return s;
}

size_t write_arp_reply(std::span<uint8_t> out, const MacAddress& our_mac, uint32_t our_ip,
                       const MacAddress& to_mac, uint32_t to_ip) {
  size_t size = kEthernetHeaderSize + kArpSize;
  if (out.size() < size) return 0;
  uint8_t* f = out.data();
  std::memcpy(f, to_mac.data(), 6);
  std::memcpy(f + 6, our_mac.data(), 6);
  put16(f + 12, kEtherTypeArp);
  uint8_t* a = f + kEthernetHeaderSize;
  put16(a, kArpHardwareEthernet);
  put16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, kArpReply);
  std::memcpy(a + 8, our_mac.data(), 6);
  put32(a + 14, our_ip);
  std::memcpy(a + 18, to_mac.data(), 6);
  put32(a + 24, to_ip);
  return size;
}

size_t write_tcp_frame(std::span<uint8_t> out, const TcpFrameSpec& spec,
                       std::span<const uint8_t> payload) {
  size_t tcp_header = kTcpHeaderSize + (spec.mss ? 4 : 0);
  size_t tcp_length = tcp_header + payload.size();
  size_t ip_length = kIpv4HeaderSize + tcp_length;
  size_t size = kEthernetHeaderSize + ip_length;
  if (out.size() < size || ip_length > 0xffff) return 0;
  uint8_t* f = out.data();
  std::memcpy(f, spec.dst_mac.data(), 6);
  std::memcpy(f + 6, spec.src_mac.data(), 6);
  put16(f + 12, kEtherTypeIpv4);

  uint8_t* ip = f + kEthernetHeaderSize;
  ip[0] = 0x45;
  ip[1] = 0;
  put16(ip + 2, static_cast<uint16_t>(ip_length));
  put16(ip + 4, spec.ip_id);
  put16(ip + 6, 0x4000);  // don't fragment
  ip[8] = 64;             // TTL
  ip[9] = kProtocolTcp;
  put16(ip + 10, 0);
  put32(ip + 12, spec.src_ip);
  put32(ip + 16, spec.dst_ip);
  put16(ip + 10, checksum_finish(checksum_add(0, std::span<const uint8_t>(ip, kIpv4HeaderSize))));

  uint8_t* tcp = ip + kIpv4HeaderSize;
  put16(tcp, spec.src_port);
  put16(tcp + 2, spec.dst_port);
  put32(tcp + 4, spec.seq);
  put32(tcp + 8, spec.ack);
  tcp[12] = static_cast<uint8_t>(tcp_header / 4 << 4);
  tcp[13] = spec.flags;
  put16(tcp + 14, spec.window);
  put16(tcp + 16, 0);
  put16(tcp + 18, 0);  // urgent pointer
  if (spec.mss) {
    tcp[20] = kTcpOptionMss;
    tcp[21] = 4;
    put16(tcp + 22, *spec.mss);
  }
  if (!payload.empty()) std::memcpy(tcp + tcp_header, payload.data(), payload.size());
  uint32_t sum = pseudo_header_sum(spec.src_ip, spec.dst_ip, tcp_length);
  put16(tcp + 16, checksum_finish(checksum_add(sum, std::span<const uint8_t>(tcp, tcp_length))));
  return size;
}

}  // namespace ignition::mmds
