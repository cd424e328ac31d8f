// The wire formats the MMDS speaks with the guest: Ethernet II, ARP for IPv4, IPv4 and TCP.
// Parsing checks everything a hostile guest could get wrong (lengths, checksums, options);
// building writes complete frames with their checksums.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "base/result.hpp"

namespace ignition::mmds {

using MacAddress = std::array<uint8_t, 6>;

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint8_t kProtocolTcp = 6;
inline constexpr size_t kEthernetHeaderSize = 14;
inline constexpr size_t kArpSize = 28;         // Ethernet/IPv4 ARP
inline constexpr size_t kIpv4HeaderSize = 20;  // without options
inline constexpr size_t kTcpHeaderSize = 20;   // without options

// TCP flags.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

struct EthernetFrame {
  MacAddress dst{};
  MacAddress src{};
  uint16_t ethertype = 0;
  std::span<const uint8_t> payload;
};
std::optional<EthernetFrame> parse_ethernet(std::span<const uint8_t> frame);

// Where, in a frame of that kind, the target address sits: enough to tell whether a frame is
// for the MMDS before parsing it. nullopt for other frames or ones too short to say.
std::optional<uint32_t> peek_arp_target(std::span<const uint8_t> frame);
std::optional<uint32_t> peek_ipv4_destination(std::span<const uint8_t> frame);

// An ARP request for an IPv4 address over Ethernet.
struct ArpRequest {
  MacAddress sender_mac{};
  uint32_t sender_ip = 0;
  uint32_t target_ip = 0;
};
Result<ArpRequest> parse_arp_request(std::span<const uint8_t> payload);

struct Ipv4Packet {
  uint32_t src = 0;
  uint32_t dst = 0;
  uint8_t protocol = 0;
  std::span<const uint8_t> payload;  // as long as the header's total length says
};
// Checks version, lengths and the header checksum; refuses fragments.
Result<Ipv4Packet> parse_ipv4(std::span<const uint8_t> payload);

struct TcpSegment {
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<uint16_t> mss;  // from a SYN's options
  std::span<const uint8_t> payload;
};
// Checks the header length, the options' layout and the checksum over the pseudo-header.
Result<TcpSegment> parse_tcp(const Ipv4Packet& packet);

// Builders write a whole frame into `out` and return its size, 0 when it does not fit.
size_t write_arp_reply(std::span<uint8_t> out, const MacAddress& our_mac, uint32_t our_ip,
                       const MacAddress& to_mac, uint32_t to_ip);

struct TcpFrameSpec {
  MacAddress src_mac{};
  MacAddress dst_mac{};
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  uint16_t ip_id = 0;
  uint16_t src_port = 0;
  uint16_t dst_port = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = 0;
  uint16_t window = 0;
  std::optional<uint16_t> mss;  // an MSS option (on a SYN)
};
size_t write_tcp_frame(std::span<uint8_t> out, const TcpFrameSpec& spec,
                       std::span<const uint8_t> payload);

}  // namespace ignition::mmds
