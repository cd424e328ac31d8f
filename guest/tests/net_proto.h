/* Just enough Ethernet, ARP, IPv4 and UDP for the virtio-net test: building an ARP request or
 * reply and a UDP datagram, and picking those two apart on receive. Addresses are host order. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_ALEN 6
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_ARP 0x0806
#define ARP_REQUEST 1
#define ARP_REPLY 2
#define IP_PROTO_UDP 17
#define NET_FRAME_MAX 1514

extern const uint8_t eth_broadcast[ETH_ALEN];

/* An ARP packet for IPv4 over Ethernet; a request has target_mac all zero. Returns the frame
 * length (padded to the 60-byte Ethernet minimum). */
size_t net_build_arp(uint8_t* frame, uint16_t op, const uint8_t* eth_dst, const uint8_t* src_mac,
                     uint32_t src_ip, const uint8_t* target_mac, uint32_t target_ip);
/* A UDP datagram in an IPv4 packet (no IP options, UDP checksum 0 = none). */
size_t net_build_udp(uint8_t* frame, const uint8_t* src_mac, const uint8_t* dst_mac,
                     uint32_t src_ip, uint32_t dst_ip, uint16_t src_port, uint16_t dst_port,
                     const void* payload, size_t len);

struct net_packet {
  uint16_t ethertype;
  const uint8_t* eth_src;
  /* ARP */
  uint16_t arp_op;
  const uint8_t* arp_sender_mac;
  uint32_t arp_sender_ip;
  uint32_t arp_target_ip;
  /* IPv4 + UDP */
  bool is_udp;
  uint32_t ip_src, ip_dst;
  uint16_t udp_src, udp_dst;
  const uint8_t* payload;
  size_t payload_len;
};

/* Parses a received frame; false if it is too short or malformed (or the IPv4 header
 * checksum is wrong). Other protocols parse with only ethertype set. */
bool net_parse(const uint8_t* frame, size_t len, struct net_packet* p);
