/* bench-net: virtio-net between the guest and a peer on the host's end of the TAP (addresses
 * from ign.ip= and ign.peer=, as for virtio-net), polled, in ring 3:
 *   1. ARP for the peer (answering ARP requests for our address throughout);
 *   2. latency: ign.bench.pings= (default 2000) UDP round trips of a 64-byte payload to the
 *      peer's echo port, one at a time, each timed with the TSC from just before the frame is
 *      queued to when its echo is seen in the receive ring:
 *      bench.net.rtt=n=<n> lost=<l> min_ns= p50_ns= p99_ns= max_ns= avg_ns=
 *   3. throughput: ign.bench.pkts= (default 100000) datagrams of ign.bench.size= (default
 *      1472) payload bytes, i.e. full 1514-byte frames, to the peer's sink port as fast as the
 *      transmit ring takes them (one descriptor per frame, header included, as Linux does),
 *      timed from the first frame to the device's return of the last one:
 *      bench.net.tx=pkts=<n> payload=<size> bytes=<n*size> ns=<t>
 *      then asks the sink how much arrived: bench.net.peer=rx=<datagrams> bytes=<b>.
 * No offloads are negotiated and interrupts are suppressed. Fails if ARP gets no answer, more
 * than 1% of the pings are lost, or the sink does not answer or received nothing. */
#include "bench_common.h"
#include "cmdline.h"
#include "cpu.h"
#include "net_proto.h"
#include "pool.h"
#include "print.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define VIRTIO_NET_F_MAC 5
#define NET_CFG_MAC 0
#define NET_HDR_LEN 12

#define QUEUE_SIZE 256
#define RX_BUFS 128
#define BUF_LEN 2048 /* header + a full frame, without MRG_RXBUF */
#define PING_PORT 40007
#define BULK_PORT 40009
#define PING_PAYLOAD 64
#define WARMUP_PINGS 20
#define DEFAULT_PINGS 2000
#define DEFAULT_PKTS 100000
#define MAX_PAYLOAD (NET_FRAME_MAX - ETH_HLEN - 28)
#define ARP_TIMEOUT_US 5000000
#define RESEND_US 200000
#define PING_TIMEOUT_US 1000000
#define BULK_TIMEOUT_US 60000000
#define DEFAULT_IP 0x0a00020f   /* 10.0.2.15 */
#define DEFAULT_PEER 0x0a000202 /* 10.0.2.2 */

struct net {
  struct virtio_test t;
  struct virtq rxq, txq;
  uint8_t* rx;   /* RX_BUFS * BUF_LEN */
  uint8_t* tx;   /* QUEUE_SIZE * BUF_LEN: one frame buffer per transmit descriptor */
  uint64_t* rtt; /* ticks per timed ping */
  bool tx_busy[QUEUE_SIZE];
  int16_t tx_of_head[QUEUE_SIZE];
  int16_t rx_of_head[QUEUE_SIZE];
  uint8_t mac[ETH_ALEN], peer_mac[ETH_ALEN];
  bool have_peer_mac;
  uint32_t ip, peer;
  uint32_t ping_waiting; /* sequence number of the ping in flight, 0 if none */
  bool ping_answered;
  bool stats_answered;
  char stats[64];
  uint32_t rx_frames, bad_frames, arp_answered;
};

static uint8_t* rx_buf(struct net* n, int i) {
  return n->rx + (uint64_t)i * BUF_LEN;
}
static uint8_t* tx_buf(struct net* n, int i) {
  return n->tx + (uint64_t)i * BUF_LEN;
}

static void post_rx(struct net* n, int i) {
  struct virtq_buf b = {(uint64_t)rx_buf(n, i), BUF_LEN, true};
  int head = virtq_add(&n->rxq, &b, 1);
  if (head >= 0) n->rx_of_head[head] = (int16_t)i;
}

static void reclaim_tx(struct net* n) {
  int head;
  while ((head = virtq_pop(&n->txq, 0)) >= 0) {
    if (n->tx_of_head[head] >= 0) n->tx_busy[n->tx_of_head[head]] = false;
    n->tx_of_head[head] = -1;
  }
  bench_quiet(&n->txq);
}

/* A free transmit buffer, or -1 while the device still holds all of them. */
static int free_tx(struct net* n) {
  for (int i = 0; i < QUEUE_SIZE; i++)
    if (!n->tx_busy[i]) return i;
  reclaim_tx(n);
  for (int i = 0; i < QUEUE_SIZE; i++)
    if (!n->tx_busy[i]) return i;
  return -1;
}

/* Queues the frame already built in buffer i (after its header space); no kick. */
static bool queue_tx(struct net* n, int i, size_t frame_len) {
  memset(tx_buf(n, i), 0, NET_HDR_LEN);
  struct virtq_buf b = {(uint64_t)tx_buf(n, i), (uint32_t)(NET_HDR_LEN + frame_len), false};
  int head = virtq_add(&n->txq, &b, 1);
  if (head < 0) return false;
  n->tx_busy[i] = true;
  n->tx_of_head[head] = (int16_t)i;
  return true;
}

static bool send_now(struct net* n, int i, size_t frame_len) {
  if (!queue_tx(n, i, frame_len)) return false;
  virtq_kick(&n->txq);
  return true;
}

static uint32_t get_be32(const uint8_t* p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void put_be32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void handle_frame(struct net* n, const uint8_t* frame, size_t len) {
  struct net_packet p;
  if (!net_parse(frame, len, &p)) {
    n->bad_frames++;
    return;
  }
  if (p.ethertype == ETH_P_ARP) {
    if (p.arp_op == ARP_REQUEST && p.arp_target_ip == n->ip) {
      int i = free_tx(n);
      if (i >= 0) {
        size_t l = net_build_arp(tx_buf(n, i) + NET_HDR_LEN, ARP_REPLY, p.arp_sender_mac, n->mac,
                                 n->ip, p.arp_sender_mac, p.arp_sender_ip);
        if (send_now(n, i, l)) n->arp_answered++;
      }
    }
    if (p.arp_sender_ip == n->peer && !n->have_peer_mac) {
      memcpy(n->peer_mac, p.arp_sender_mac, ETH_ALEN);
      n->have_peer_mac = true;
    }
    return;
  }
  if (!p.is_udp || p.ip_src != n->peer || p.ip_dst != n->ip) return;
  if (p.udp_src == IGN_NET_ECHO_PORT && p.udp_dst == PING_PORT && p.payload_len == PING_PAYLOAD &&
      n->ping_waiting && get_be32(p.payload) == n->ping_waiting) {
    n->ping_answered = true;
  } else if (p.udp_src == IGN_NET_SINK_PORT && p.udp_dst == BULK_PORT && !n->stats_answered) {
    size_t l = p.payload_len < sizeof(n->stats) - 1 ? p.payload_len : sizeof(n->stats) - 1;
    for (size_t k = 0; k < l; k++) {
      char c = (char)p.payload[k];
      n->stats[k] = c >= 0x20 && c < 0x7f ? c : '?';
    }
    n->stats[l] = 0;
    n->stats_answered = true;
  }
}

static void poll_rx(struct net* n) {
  uint32_t len;
  int head;
  bool reposted = false;
  while ((head = virtq_pop(&n->rxq, &len)) >= 0) {
    int i = n->rx_of_head[head];
    if (i < 0) continue;
    n->rx_frames++;
    if (len > NET_HDR_LEN && len <= BUF_LEN)
      handle_frame(n, rx_buf(n, i) + NET_HDR_LEN, len - NET_HDR_LEN);
    else
      n->bad_frames++;
    post_rx(n, i);
    reposted = true;
  }
  bench_quiet(&n->rxq);
  if (reposted) virtq_kick(&n->rxq);
}

static bool resolve_peer(struct net* n) {
  uint64_t deadline = deadline_after_us(ARP_TIMEOUT_US), next = 0;
  while (!n->have_peer_mac && !deadline_passed(deadline)) {
    poll_rx(n);
    if (rdtsc() < next) {
      cpu_relax();
      continue;
    }
    next = deadline_after_us(RESEND_US);
    int i = free_tx(n);
    if (i < 0) continue;
    size_t l = net_build_arp(tx_buf(n, i) + NET_HDR_LEN, ARP_REQUEST, eth_broadcast, n->mac, n->ip,
                             0, n->peer);
    send_now(n, i, l);
  }
  return n->have_peer_mac;
}

/* One round trip; returns its ticks, or 0 if the echo did not come back in time. */
static uint64_t ping(struct net* n, uint32_t seq) {
  uint64_t start = rdtsc(), deadline = deadline_after_us(PING_TIMEOUT_US);
  int i;
  while ((i = free_tx(n)) < 0) {
    if (deadline_passed(deadline)) return 0;
    cpu_relax();
  }
  uint8_t payload[PING_PAYLOAD] = {0};
  put_be32(payload, seq);
  size_t l = net_build_udp(tx_buf(n, i) + NET_HDR_LEN, n->mac, n->peer_mac, n->ip, n->peer,
                           PING_PORT, IGN_NET_ECHO_PORT, payload, sizeof(payload));
  n->ping_waiting = seq;
  n->ping_answered = false;
  start = rdtsc();
  send_now(n, i, l);
  while (!n->ping_answered) {
    if (deadline_passed(deadline)) break;
    poll_rx(n);
  }
  uint64_t ticks = rdtsc() - start;
  n->ping_waiting = 0;
  reclaim_tx(n);
  return n->ping_answered ? (ticks ? ticks : 1) : 0;
}

static void sort_u64(uint64_t* a, uint32_t count) {
  for (uint32_t gap = count / 2; gap > 0; gap /= 2) {
    for (uint32_t i = gap; i < count; i++) {
      uint64_t v = a[i];
      uint32_t j = i;
      for (; j >= gap && a[j - gap] > v; j -= gap) a[j] = a[j - gap];
      a[j] = v;
    }
  }
}

static bool latency(struct net* n, uint32_t pings) {
  uint32_t seq = 1, lost = 0, got = 0;
  for (int k = 0; k < WARMUP_PINGS; k++) ping(n, seq++);
  uint64_t sum = 0;
  for (uint32_t k = 0; k < pings; k++) {
    uint64_t t = ping(n, seq++);
    if (!t) {
      lost++;
      if (lost > pings / 100) break;
      continue;
    }
    n->rtt[got++] = t;
    sum += t;
  }
  if (got == 0) {
    report_fail(IGN_TEST_BENCH_NET, "no-echo lost=%u", lost);
    return false;
  }
  sort_u64(n->rtt, got);
  report_info("bench.net.rtt=n=%u lost=%u min_ns=%lu p50_ns=%lu p99_ns=%lu max_ns=%lu avg_ns=%lu",
              got, lost, bench_ns(n->rtt[0]), bench_ns(n->rtt[got / 2]),
              bench_ns(n->rtt[(uint64_t)got * 99 / 100]), bench_ns(n->rtt[got - 1]),
              bench_ns(sum / got));
  if (lost > pings / 100) {
    report_fail(IGN_TEST_BENCH_NET, "pings-lost lost=%u of=%u", lost, pings);
    return false;
  }
  return true;
}

static bool throughput(struct net* n, uint32_t pkts, uint32_t size) {
  static const uint8_t payload[MAX_PAYLOAD]; /* zeros */
  size_t frame_len = 0;
  /* Every buffer holds the same datagram; only its sequence number changes. */
  for (int i = 0; i < QUEUE_SIZE; i++) {
    frame_len = net_build_udp(tx_buf(n, i) + NET_HDR_LEN, n->mac, n->peer_mac, n->ip, n->peer,
                              BULK_PORT, IGN_NET_SINK_PORT, payload, size);
    memset(tx_buf(n, i), 0, NET_HDR_LEN);
  }
  uint32_t payload_off = NET_HDR_LEN + ETH_HLEN + 28;
  uint64_t deadline = deadline_after_us(BULK_TIMEOUT_US);
  uint32_t sent = 0;
  uint64_t start = rdtsc();
  while (sent < pkts && !deadline_passed(deadline)) {
    reclaim_tx(n);
    bool added = false;
    for (int i = 0; i < QUEUE_SIZE && sent < pkts; i++) {
      if (n->tx_busy[i]) continue;
      put_be32(tx_buf(n, i) + payload_off, sent);
      struct virtq_buf b = {(uint64_t)tx_buf(n, i), (uint32_t)(NET_HDR_LEN + frame_len), false};
      int head = virtq_add(&n->txq, &b, 1);
      if (head < 0) break;
      n->tx_busy[i] = true;
      n->tx_of_head[head] = (int16_t)i;
      sent++;
      added = true;
    }
    if (added) virtq_kick(&n->txq);
    poll_rx(n); /* ARP probes from the peer's kernel must still be answered */
  }
  while (n->txq.num_free != n->txq.size && !deadline_passed(deadline)) reclaim_tx(n);
  uint64_t ticks = rdtsc() - start;
  if (n->txq.num_free != n->txq.size) {
    report_fail(IGN_TEST_BENCH_NET, "tx-timeout sent=%u in_flight=%u", sent,
                n->txq.size - n->txq.num_free);
    return false;
  }
  report_info("bench.net.tx=pkts=%u payload=%u bytes=%lu ns=%lu", sent, size, (uint64_t)sent * size,
              bench_ns(ticks));

  /* The sink's count: asked until it answers (STATS does not reset it). */
  deadline = deadline_after_us(ARP_TIMEOUT_US);
  uint64_t next = 0;
  while (!n->stats_answered && !deadline_passed(deadline)) {
    poll_rx(n);
    reclaim_tx(n);
    if (rdtsc() < next) continue;
    next = deadline_after_us(RESEND_US);
    int i = free_tx(n);
    if (i < 0) continue;
    size_t l =
        net_build_udp(tx_buf(n, i) + NET_HDR_LEN, n->mac, n->peer_mac, n->ip, n->peer, BULK_PORT,
                      IGN_NET_SINK_PORT, IGN_NET_SINK_STATS, sizeof(IGN_NET_SINK_STATS) - 1);
    send_now(n, i, l);
  }
  if (!n->stats_answered) {
    report_fail(IGN_TEST_BENCH_NET, "no-sink-stats sent=%u", sent);
    return false;
  }
  report_info("bench.net.peer=%s", n->stats);
  if (strlen(n->stats) < 5 || memcmp(n->stats, "rx=0 ", 5) == 0) {
    report_fail(IGN_TEST_BENCH_NET, "sink-received-nothing sent=%u stats=%s", sent, n->stats);
    return false;
  }
  return true;
}

static void addresses(struct guest* g, struct net* n) {
  struct str v;
  int prefix;
  n->ip = DEFAULT_IP;
  n->peer = DEFAULT_PEER;
  if (cmdline_option(&g->boot, IGN_OPT_IP, &v)) parse_ipv4(v, &n->ip, &prefix);
  if (cmdline_option(&g->boot, IGN_OPT_PEER, &v)) parse_ipv4(v, &n->peer, &prefix);
}

static bool setup(struct guest* g, struct net* n, uint32_t pings) {
  n->rx = pool_alloc((uint64_t)RX_BUFS * BUF_LEN, PAGE_SIZE);
  n->tx = pool_alloc((uint64_t)QUEUE_SIZE * BUF_LEN, PAGE_SIZE);
  n->rtt = pool_alloc((uint64_t)pings * sizeof(uint64_t), 64);
  if (!n->rx || !n->tx || !n->rtt) {
    report_fail(IGN_TEST_BENCH_NET, "out-of-memory");
    return false;
  }
  if (!virtio_has(&n->t.dev, VIRTIO_NET_F_MAC)) {
    report_fail(IGN_TEST_BENCH_NET, "no-mac-feature");
    return false;
  }
  for (int i = 0; i < ETH_ALEN; i++) n->mac[i] = virtio_config_read8(&n->t.dev, NET_CFG_MAC + i);
  addresses(g, n);
  for (int i = 0; i < QUEUE_SIZE; i++) n->tx_of_head[i] = n->rx_of_head[i] = -1;
  virtio_driver_ok(&n->t.dev);
  bench_quiet(&n->rxq);
  bench_quiet(&n->txq);
  for (int i = 0; i < RX_BUFS; i++) post_rx(n, i);
  virtq_kick(&n->rxq);
  return true;
}

void test_bench_net(struct guest* g) {
  const char* name = IGN_TEST_BENCH_NET;
  struct virtio_test t;
  struct net* n = 0;
  uint64_t wanted = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
  if (!virtio_test_open(&t, g, name, "net", VIRTIO_ID_NET, wanted)) goto out;
  n = pool_alloc(sizeof(*n), 64);
  if (!n) {
    report_fail(name, "out-of-memory");
    goto out;
  }
  n->t = t;
  uint32_t pings = (uint32_t)bench_option(g, IGN_OPT_BENCH_PINGS, DEFAULT_PINGS, 1, 1000000);
  uint32_t pkts = (uint32_t)bench_option(g, IGN_OPT_BENCH_PKTS, DEFAULT_PKTS, 1, 100000000);
  uint32_t size = (uint32_t)bench_option(g, IGN_OPT_BENCH_SIZE, MAX_PAYLOAD, 16, MAX_PAYLOAD);
  if (!virtio_test_queue(&n->t, &n->rxq, 0, QUEUE_SIZE) ||
      !virtio_test_queue(&n->t, &n->txq, 1, QUEUE_SIZE) || !setup(g, n, pings))
    goto out;
  bench_report_clock("bench.net");
  if (!resolve_peer(n)) {
    report_fail(name, "no-arp-reply rx=%u bad=%u", n->rx_frames, n->bad_frames);
  } else if (latency(n, pings) && throughput(n, pkts, size)) {
    report_pass(name, "pings=%u pkts=%u size=%u rx=%u arp_answered=%u", pings, pkts, size,
                n->rx_frames, n->arp_answered);
  }
out:
  virtio_test_close(n ? &n->t : &t);
}
