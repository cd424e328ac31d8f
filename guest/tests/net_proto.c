/* See net_proto.h. */
#include "net_proto.h"

#include "string.h"

#define ARP_LEN 28
#define IP_HLEN 20
#define UDP_HLEN 8
#define ETH_MIN_FRAME 60

const uint8_t eth_broadcast[ETH_ALEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void put16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put32(uint8_t* p, uint32_t v) {
  put16(p, (uint16_t)(v >> 16));
  put16(p + 2, (uint16_t)v);
}
static uint16_t get16(const uint8_t* p) {
  return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t get32(const uint8_t* p) {
  return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static uint16_t ip_checksum(const uint8_t* p, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += get16(p + i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static void eth_header(uint8_t* f, const uint8_t* dst, const uint8_t* src, uint16_t type) {
  memcpy(f, dst, ETH_ALEN);
  memcpy(f + ETH_ALEN, src, ETH_ALEN);
  put16(f + 12, type);
}

size_t net_build_arp(uint8_t* f, uint16_t op, const uint8_t* eth_dst, const uint8_t* src_mac,
                     uint32_t src_ip, const uint8_t* target_mac, uint32_t target_ip) {
  static const uint8_t zero_mac[ETH_ALEN];
  memset(f, 0, ETH_MIN_FRAME);
  eth_header(f, eth_dst, src_mac, ETH_P_ARP);
  uint8_t* a = f + ETH_HLEN;
  put16(a, 1); /* hardware: Ethernet */
  put16(a + 2, ETH_P_IP);
  a[4] = ETH_ALEN;
  a[5] = 4;
  put16(a + 6, op);
  memcpy(a + 8, src_mac, ETH_ALEN);
  put32(a + 14, src_ip);
  memcpy(a + 18, target_mac ? target_mac : zero_mac, ETH_ALEN);
  put32(a + 24, target_ip);
  return ETH_MIN_FRAME;
}

size_t net_build_udp(uint8_t* f, const uint8_t* src_mac, const uint8_t* dst_mac, uint32_t src_ip,
                     uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, const void* payload,
                     size_t len) {
  eth_header(f, dst_mac, src_mac, ETH_P_IP);
  uint8_t* ip = f + ETH_HLEN;
  memset(ip, 0, IP_HLEN);
  ip[0] = 0x45; /* IPv4, 5-word header */
  put16(ip + 2, (uint16_t)(IP_HLEN + UDP_HLEN + len));
  put16(ip + 6, 0x4000); /* don't fragment */
  ip[8] = 64;            /* TTL */
  ip[9] = IP_PROTO_UDP;
  put32(ip + 12, src_ip);
  put32(ip + 16, dst_ip);
  put16(ip + 10, ip_checksum(ip, IP_HLEN));
  uint8_t* udp = ip + IP_HLEN;
  put16(udp, src_port);
  put16(udp + 2, dst_port);
  put16(udp + 4, (uint16_t)(UDP_HLEN + len));
  put16(udp + 6, 0);
  memcpy(udp + UDP_HLEN, payload, len);
  size_t total = ETH_HLEN + IP_HLEN + UDP_HLEN + len;
  if (total < ETH_MIN_FRAME) {
    memset(f + total, 0, ETH_MIN_FRAME - total);
    total = ETH_MIN_FRAME;
  }
  return total;
}

bool net_parse(const uint8_t* f, size_t len, struct net_packet* p) {
  memset(p, 0, sizeof(*p));
  if (len < ETH_HLEN) return false;
  p->ethertype = get16(f + 12);
  p->eth_src = f + ETH_ALEN;
  const uint8_t* b = f + ETH_HLEN;
  size_t blen = len - ETH_HLEN;
  if (p->ethertype == ETH_P_ARP) {
    if (blen < ARP_LEN || get16(b) != 1 || get16(b + 2) != ETH_P_IP || b[4] != ETH_ALEN ||
        b[5] != 4)
      return false;
    p->arp_op = get16(b + 6);
    p->arp_sender_mac = b + 8;
    p->arp_sender_ip = get32(b + 14);
    p->arp_target_ip = get32(b + 24);
    return true;
  }
  if (p->ethertype != ETH_P_IP) return true;
  if (blen < IP_HLEN || (b[0] >> 4) != 4) return false;
  size_t ihl = (size_t)(b[0] & 0xf) * 4, total = get16(b + 2);
  if (ihl < IP_HLEN || total < ihl || total > blen || ip_checksum(b, ihl) != 0) return false;
  p->ip_src = get32(b + 12);
  p->ip_dst = get32(b + 16);
  if (b[9] != IP_PROTO_UDP || (get16(b + 6) & 0x3fff)) return true; /* not UDP, or a fragment */
  const uint8_t* u = b + ihl;
  size_t ulen = total - ihl;
  if (ulen < UDP_HLEN || get16(u + 4) < UDP_HLEN || get16(u + 4) > ulen) return false;
  p->is_udp = true;
  p->udp_src = get16(u);
  p->udp_dst = get16(u + 2);
  p->payload = u + UDP_HLEN;
  p->payload_len = get16(u + 4) - UDP_HLEN;
  return true;
}
