/* virtio-net: reads the MAC from config space, then talks to the host on a point-to-point
 * link: resolves the peer's MAC with ARP (answering ARP requests for its own address too),
 * sends a UDP datagram to the peer's echo port and waits for the same payload to come back.
 * Addresses come from ign.ip= and ign.peer= (defaults 10.0.2.15/24 and 10.0.2.2). Receive
 * buffers carry the 12-byte virtio_net_hdr (version 1 layout, num_buffers included). */
#include "cmdline.h"
#include "cpu.h"
#include "irq.h"
#include "net_proto.h"
#include "pool.h"
#include "print.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define NET_CFG_MAC 0
#define NET_CFG_STATUS 6
#define VIRTIO_NET_S_LINK_UP 1

#define NET_HDR_LEN 12
#define RX_BUFS 16
#define RX_BUF_LEN 2048 /* >= 1526: header + a full frame, as the spec asks without MRG_RXBUF */
#define RESEND_US 200000
#define TIMEOUT_US 10000000
#define SRC_PORT 40007
#define DEFAULT_IP 0x0a00020f   /* 10.0.2.15 */
#define DEFAULT_PEER 0x0a000202 /* 10.0.2.2 */

struct net {
  struct virtio_test t;
  struct virtq rxq, txq;
  uint8_t* rx[RX_BUFS];
  uint8_t* tx;
  uint8_t mac[ETH_ALEN];
  uint32_t ip, peer;
  uint8_t peer_mac[ETH_ALEN];
  bool have_peer_mac;
  char payload[64];
  size_t payload_len;
  bool echoed;
  uint32_t rx_frames, tx_frames, arp_answered, bad_frames, merged;
};

static void post_rx(struct net* n, int i) {
  struct virtq_buf b = {(uint64_t)n->rx[i], RX_BUF_LEN, true};
  virtq_add(&n->rxq, &b, 1);
}

/* Sends one frame (already built after the header space in n->tx); the header and the frame
 * go in separate descriptors. Waits for the device to take it, so n->tx can be reused. */
static bool send(struct net* n, size_t frame_len) {
  memset(n->tx, 0, NET_HDR_LEN);
  struct virtq_buf bufs[2] = {{(uint64_t)n->tx, NET_HDR_LEN, false},
                              {(uint64_t)n->tx + NET_HDR_LEN, (uint32_t)frame_len, false}};
  if (virtq_transfer(&n->txq, bufs, 2, 1000000) < 0) return false;
  n->tx_frames++;
  return true;
}

static void handle_frame(struct net* n, const uint8_t* frame, size_t len) {
  struct net_packet p;
  if (!net_parse(frame, len, &p)) {
    n->bad_frames++;
    return;
  }
  if (p.ethertype == ETH_P_ARP) {
    if (p.arp_op == ARP_REQUEST && p.arp_target_ip == n->ip) {
      size_t l = net_build_arp(n->tx + NET_HDR_LEN, ARP_REPLY, p.arp_sender_mac, n->mac, n->ip,
                               p.arp_sender_mac, p.arp_sender_ip);
      if (send(n, l)) n->arp_answered++;
    }
    if (p.arp_sender_ip == n->peer && !n->have_peer_mac) {
      memcpy(n->peer_mac, p.arp_sender_mac, ETH_ALEN);
      n->have_peer_mac = true;
    }
    return;
  }
  if (p.is_udp && p.ip_src == n->peer && p.ip_dst == n->ip && p.udp_src == IGN_NET_ECHO_PORT &&
      p.udp_dst == SRC_PORT && p.payload_len == n->payload_len &&
      memcmp(p.payload, n->payload, n->payload_len) == 0)
    n->echoed = true;
}

static void poll_rx(struct net* n) {
  uint32_t len;
  int head;
  while ((head = virtq_pop(&n->rxq, &len)) >= 0) {
    int i = 0;
    while (i < RX_BUFS && (uint64_t)n->rx[i] != n->rxq.desc[head].addr) i++;
    if (i == RX_BUFS) continue; /* cannot happen: every head is one of ours */
    n->rx_frames++;
    uint16_t num_buffers;
    memcpy(&num_buffers, n->rx[i] + 10, sizeof(num_buffers));
    if (virtio_has(&n->t.dev, VIRTIO_NET_F_MRG_RXBUF) && num_buffers > 1) {
      n->merged++; /* never for frames this small; dropped rather than reassembled */
    } else if (len > NET_HDR_LEN && len <= RX_BUF_LEN) {
      handle_frame(n, n->rx[i] + NET_HDR_LEN, len - NET_HDR_LEN);
    } else {
      n->bad_frames++;
    }
    post_rx(n, i);
  }
  virtq_kick(&n->rxq);
}

static void format_mac(char* out, size_t cap, const uint8_t* m) {
  struct strbuf b = {out, cap, 0};
  sbprintf(&b, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

static void addresses(struct guest* g, struct net* n) {
  struct str v;
  int prefix;
  n->ip = DEFAULT_IP;
  n->peer = DEFAULT_PEER;
  if (cmdline_option(&g->boot, IGN_OPT_IP, &v) && !parse_ipv4(v, &n->ip, &prefix))
    report_info("net.bad-ip=%.*s", (int)v.len, v.p);
  if (cmdline_option(&g->boot, IGN_OPT_PEER, &v) && !parse_ipv4(v, &n->peer, &prefix))
    report_info("net.bad-peer=%.*s", (int)v.len, v.p);
}

static void exchange(struct net* n) {
  uint64_t deadline = deadline_after_us(TIMEOUT_US), next_send = 0;
  uint64_t irqs_seen = virtio_irq_count();
  uint32_t sent = 0;
  while (!n->echoed && !deadline_passed(deadline)) {
    if (virtio_irq_count() != irqs_seen) {
      irqs_seen = virtio_irq_count();
      virtio_ack_interrupt(&n->t.dev);
    }
    poll_rx(n);
    if (rdtsc() < next_send) {
      cpu_relax();
      continue;
    }
    next_send = deadline_after_us(RESEND_US);
    size_t l;
    if (!n->have_peer_mac) {
      l = net_build_arp(n->tx + NET_HDR_LEN, ARP_REQUEST, eth_broadcast, n->mac, n->ip, 0, n->peer);
    } else {
      struct strbuf b = {n->payload, sizeof(n->payload), 0};
      sbprintf(&b, "ignition virtio-net echo %u", ++sent);
      n->payload_len = b.len;
      l = net_build_udp(n->tx + NET_HDR_LEN, n->mac, n->peer_mac, n->ip, n->peer, SRC_PORT,
                        IGN_NET_ECHO_PORT, n->payload, n->payload_len);
    }
    send(n, l);
  }
  report_info("net.udp_sent=%u", sent);
}

void test_virtio_net(struct guest* g) {
  struct net* n = 0;
  struct virtio_test t;
  uint64_t wanted = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS) |
                    VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
  if (!virtio_test_open(&t, g, IGN_TEST_VIRTIO_NET, "net", VIRTIO_ID_NET, wanted)) goto out;
  n = pool_alloc(sizeof(*n), 64);
  if (!n) {
    report_fail(IGN_TEST_VIRTIO_NET, "out-of-memory");
    goto out;
  }
  n->t = t;
  if (!virtio_test_queue(&n->t, &n->rxq, 0, 64) || !virtio_test_queue(&n->t, &n->txq, 1, 64))
    goto out;
  if (!virtio_has(&n->t.dev, VIRTIO_NET_F_MAC)) {
    report_fail(IGN_TEST_VIRTIO_NET, "no-mac-feature");
    goto out;
  }
  for (int i = 0; i < ETH_ALEN; i++) n->mac[i] = virtio_config_read8(&n->t.dev, NET_CFG_MAC + i);
  char mac[18];
  format_mac(mac, sizeof(mac), n->mac);
  report_info("net.mac=%s", mac);
  if (virtio_has(&n->t.dev, VIRTIO_NET_F_STATUS))
    report_info(
        "net.link=%s",
        virtio_config_read16(&n->t.dev, NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP ? "up" : "down");
  addresses(g, n);
  n->tx = pool_alloc(NET_HDR_LEN + NET_FRAME_MAX, 64);
  for (int i = 0; i < RX_BUFS; i++) n->rx[i] = pool_alloc(RX_BUF_LEN, 64);
  if (!n->tx || !n->rx[RX_BUFS - 1]) {
    report_fail(IGN_TEST_VIRTIO_NET, "out-of-memory");
    goto out;
  }
  virtio_driver_ok(&n->t.dev);
  for (int i = 0; i < RX_BUFS; i++) post_rx(n, i);
  virtq_kick(&n->rxq);
  bool routed = virtio_irq_route(g, &n->t.dev);
  uint64_t irqs_before = virtio_irq_count();
  exchange(n);
  virtio_irq_mask(g, &n->t.dev);
  uint64_t irqs = virtio_irq_count() - irqs_before;

  if (n->have_peer_mac) {
    format_mac(mac, sizeof(mac), n->peer_mac);
    report_info("net.peer_mac=%s", mac);
  }
  report_info("net.rx_frames=%u tx_frames=%u arp_answered=%u bad=%u irqs=%lu", n->rx_frames,
              n->tx_frames, n->arp_answered, n->bad_frames, irqs);
  if (n->echoed) {
    report_info("net.echo=%s", n->payload);
    report_pass(IGN_TEST_VIRTIO_NET, "rx=%u tx=%u arp_answered=%u irqs=%lu", n->rx_frames,
                n->tx_frames, n->arp_answered, irqs);
  } else {
    report_fail(IGN_TEST_VIRTIO_NET, "%s rx=%u tx=%u routed=%d status=0x%x",
                n->have_peer_mac ? "no-echo" : "no-arp-reply", n->rx_frames, n->tx_frames, routed,
                virtio_status(&n->t.dev));
  }
out:
  virtio_test_close(n ? &n->t : &t);
}
