/* bench-vsock: guest-to-host stream throughput over virtio-vsock, polled, in ring 3. Connects
 * to the host (CID 2) on ign.vsock.port= (default 1234), sends ign.vsock.bytes= (default
 * 64 MiB) in packets of ign.bench.size= bytes (default 64 KiB, the most a packet may carry;
 * a multiple of 8) within the host's credit, then SHUTDOWN and waits for the host's RST,
 * which comes once every byte has been handed to the host socket. The stream is checkable:
 * the 8-byte word at stream offset o (o a multiple of 8) holds o, little-endian.
 *   bench.vsock.tx=bytes=<n> pkt=<size> ns=<first packet to RST> sent_ns=<to the last packet
 *   queued> credit_waits=<times the host's credit ran out>
 * Interrupts are suppressed. Fails if the connection is refused, reset early, or stalls. */
#include "bench_common.h"
#include "cpu.h"
#include "pool.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define VSOCK_CFG_GUEST_CID 0
#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUTDOWN_BOTH 3

#define QUEUE_SIZE 128
#define RX_BUFS 32
#define RX_DATA 4096
#define TX_SLOTS 32
#define EVENT_BUFS 4
#define MAX_PKT 65536
#define BUF_ALLOC 65536 /* what we advertise; we never keep received data */
#define LOCAL_PORT 49153
#define DEFAULT_PORT 1234
#define DEFAULT_BYTES (64ull << 20)
#define CONNECT_TIMEOUT_US 5000000
#define STREAM_TIMEOUT_US 60000000
#define CLOSE_TIMEOUT_US 10000000
#define CREDIT_REQUEST_US 100000

struct vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct vsock_hdr) == 44, "virtio_vsock_hdr is 44 bytes");

enum state { CONNECTING, CONNECTED, RESET };

struct vsock {
  struct virtio_test t;
  struct virtq rxq, txq, evq;
  uint64_t cid;
  uint32_t port;
  struct vsock_hdr* rx_hdr; /* RX_BUFS */
  uint8_t* rx_data;         /* RX_BUFS * RX_DATA */
  int16_t rx_of_head[QUEUE_SIZE];
  struct vsock_hdr* tx_hdr; /* TX_SLOTS */
  uint8_t* tx_data;         /* TX_SLOTS * pkt */
  uint32_t pkt;
  bool tx_busy[TX_SLOTS];
  int16_t tx_of_head[QUEUE_SIZE];
  uint32_t* events; /* EVENT_BUFS */
  enum state state;
  uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt, fwd_cnt;
  uint32_t bad_packets;
};

static void post_rx(struct vsock* v, int i) {
  struct virtq_buf b[2] = {{(uint64_t)&v->rx_hdr[i], sizeof(struct vsock_hdr), true},
                           {(uint64_t)v->rx_data + (uint64_t)i * RX_DATA, RX_DATA, true}};
  int head = virtq_add(&v->rxq, b, 2);
  if (head >= 0) v->rx_of_head[head] = (int16_t)i;
}

static void reclaim_tx(struct vsock* v) {
  int head;
  while ((head = virtq_pop(&v->txq, 0)) >= 0) {
    if (v->tx_of_head[head] >= 0) v->tx_busy[v->tx_of_head[head]] = false;
    v->tx_of_head[head] = -1;
  }
  bench_quiet(&v->txq);
}

static int free_slot(struct vsock* v) {
  for (int i = 0; i < TX_SLOTS; i++)
    if (!v->tx_busy[i]) return i;
  return -1;
}

/* Queues a packet from slot i (len data bytes already in place); no kick. */
static bool queue_pkt(struct vsock* v, int i, uint16_t op, uint32_t flags, uint32_t len) {
  struct vsock_hdr* h = &v->tx_hdr[i];
  *h = (struct vsock_hdr){.src_cid = v->cid,
                          .dst_cid = VSOCK_HOST_CID,
                          .src_port = LOCAL_PORT,
                          .dst_port = v->port,
                          .len = len,
                          .type = VSOCK_TYPE_STREAM,
                          .op = op,
                          .flags = flags,
                          .buf_alloc = BUF_ALLOC,
                          .fwd_cnt = v->fwd_cnt};
  struct virtq_buf b[2] = {{(uint64_t)h, sizeof(*h), false},
                           {(uint64_t)v->tx_data + (uint64_t)i * v->pkt, len, false}};
  int head = virtq_add(&v->txq, b, len ? 2 : 1);
  if (head < 0) return false;
  v->tx_busy[i] = true;
  v->tx_of_head[head] = (int16_t)i;
  if (op == OP_RW) v->tx_cnt += len;
  return true;
}

/* A control packet (no data), sent at once; waits (bounded) for a free slot. */
static bool send_ctrl(struct vsock* v, uint16_t op, uint32_t flags) {
  uint64_t deadline = deadline_after_us(1000000);
  int i;
  while ((i = free_slot(v)) < 0) {
    if (deadline_passed(deadline)) return false;
    reclaim_tx(v);
  }
  if (!queue_pkt(v, i, op, flags, 0)) return false;
  virtq_kick(&v->txq);
  return true;
}

static void handle(struct vsock* v, const struct vsock_hdr* h, uint32_t data_len) {
  if (h->dst_cid != v->cid || h->src_cid != VSOCK_HOST_CID || h->dst_port != LOCAL_PORT ||
      h->src_port != v->port || h->type != VSOCK_TYPE_STREAM || h->len > data_len) {
    v->bad_packets++;
    return;
  }
  v->peer_buf_alloc = h->buf_alloc;
  v->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
    case OP_RESPONSE:
      if (v->state == CONNECTING) v->state = CONNECTED;
      break;
    case OP_RST:
      v->state = RESET;
      break;
    case OP_RW:
      v->fwd_cnt += h->len; /* consumed (dropped) at once */
      break;
    case OP_CREDIT_REQUEST:
      send_ctrl(v, OP_CREDIT_UPDATE, 0);
      break;
    default: /* CREDIT_UPDATE: the header alone carries it; SHUTDOWN: we are closing anyway */
      break;
  }
}

static void poll(struct vsock* v) {
  uint32_t len;
  int head;
  bool reposted = false;
  while ((head = virtq_pop(&v->rxq, &len)) >= 0) {
    int i = v->rx_of_head[head];
    if (i < 0) continue;
    if (len >= sizeof(struct vsock_hdr))
      handle(v, &v->rx_hdr[i], (uint32_t)(len - sizeof(struct vsock_hdr)));
    else
      v->bad_packets++;
    post_rx(v, i);
    reposted = true;
  }
  bench_quiet(&v->rxq);
  if (reposted) virtq_kick(&v->rxq);
  reclaim_tx(v);
  while ((head = virtq_pop(&v->evq, &len)) >= 0) {
    v->state = RESET; /* the only event is a transport reset */
    struct virtq_buf b = {(uint64_t)&v->events[head % EVENT_BUFS], sizeof(uint32_t), true};
    virtq_add(&v->evq, &b, 1);
    virtq_kick(&v->evq);
  }
  bench_quiet(&v->evq);
}

static uint32_t credit(const struct vsock* v) {
  uint32_t in_flight = v->tx_cnt - v->peer_fwd_cnt;
  return in_flight >= v->peer_buf_alloc ? 0 : v->peer_buf_alloc - in_flight;
}

static void fill(uint8_t* p, uint64_t offset, uint32_t len) {
  for (uint32_t k = 0; k < len; k += 8) {
    uint64_t w = offset + k;
    memcpy(p + k, &w, sizeof(w));
  }
}

static bool stream(struct vsock* v, uint64_t total) {
  const char* name = IGN_TEST_BENCH_VSOCK;
  uint64_t deadline = deadline_after_us(CONNECT_TIMEOUT_US);
  v->state = CONNECTING;
  if (!send_ctrl(v, OP_REQUEST, 0)) {
    report_fail(name, "connect no-tx-slot");
    return false;
  }
  while (v->state == CONNECTING && !deadline_passed(deadline)) poll(v);
  if (v->state != CONNECTED) {
    report_fail(name, "connect %s port=%u", v->state == RESET ? "refused" : "timeout", v->port);
    return false;
  }
  uint64_t sent = 0, next_request = 0;
  uint32_t credit_waits = 0;
  bool waiting = false;
  deadline = deadline_after_us(STREAM_TIMEOUT_US);
  uint64_t start = rdtsc();
  while (sent < total && v->state == CONNECTED && !deadline_passed(deadline)) {
    poll(v);
    bool added = false;
    int i;
    while (sent < total && (i = free_slot(v)) >= 0) {
      /* Whole words only, so every packet starts at a multiple of 8 in the stream. */
      uint32_t c = credit(v) & ~7u;
      if (c == 0) {
        if (!waiting) credit_waits++;
        waiting = true;
        if (rdtsc() >= next_request) {
          send_ctrl(v, OP_CREDIT_REQUEST, 0);
          next_request = deadline_after_us(CREDIT_REQUEST_US);
        }
        break;
      }
      waiting = false;
      uint32_t n = total - sent < v->pkt ? (uint32_t)(total - sent) : v->pkt;
      if (n > c) n = c;
      fill(v->tx_data + (uint64_t)i * v->pkt, sent, n);
      if (!queue_pkt(v, i, OP_RW, 0, n)) break;
      sent += n;
      added = true;
    }
    if (added) virtq_kick(&v->txq);
  }
  uint64_t sent_ticks = rdtsc() - start;
  if (sent != total) {
    report_fail(name, "send-incomplete sent=%lu total=%lu state=%d", sent, total, v->state);
    return false;
  }
  if (!send_ctrl(v, OP_SHUTDOWN, SHUTDOWN_BOTH)) {
    report_fail(name, "shutdown no-tx-slot");
    return false;
  }
  deadline = deadline_after_us(CLOSE_TIMEOUT_US);
  while (v->state == CONNECTED && !deadline_passed(deadline)) poll(v);
  uint64_t ticks = rdtsc() - start;
  if (v->state != RESET) {
    report_fail(name, "no-rst-after-shutdown sent=%lu", sent);
    return false;
  }
  report_info("bench.vsock.tx=bytes=%lu pkt=%u ns=%lu sent_ns=%lu credit_waits=%u", sent, v->pkt,
              bench_ns(ticks), bench_ns(sent_ticks), credit_waits);
  return true;
}

static bool setup(struct vsock* v) {
  v->rx_hdr = pool_alloc(RX_BUFS * sizeof(struct vsock_hdr), 64);
  v->rx_data = pool_alloc((uint64_t)RX_BUFS * RX_DATA, PAGE_SIZE);
  v->tx_hdr = pool_alloc(TX_SLOTS * sizeof(struct vsock_hdr), 64);
  v->tx_data = pool_alloc((uint64_t)TX_SLOTS * v->pkt, PAGE_SIZE);
  v->events = pool_alloc(EVENT_BUFS * sizeof(uint32_t), 64);
  if (!v->rx_hdr || !v->rx_data || !v->tx_hdr || !v->tx_data || !v->events) return false;
  for (int i = 0; i < QUEUE_SIZE; i++) v->rx_of_head[i] = v->tx_of_head[i] = -1;
  virtio_driver_ok(&v->t.dev);
  bench_quiet(&v->rxq);
  bench_quiet(&v->txq);
  bench_quiet(&v->evq);
  for (int i = 0; i < RX_BUFS; i++) post_rx(v, i);
  virtq_kick(&v->rxq);
  for (int i = 0; i < EVENT_BUFS; i++) {
    struct virtq_buf b = {(uint64_t)&v->events[i], sizeof(uint32_t), true};
    virtq_add(&v->evq, &b, 1);
  }
  virtq_kick(&v->evq);
  return true;
}

void test_bench_vsock(struct guest* g) {
  const char* name = IGN_TEST_BENCH_VSOCK;
  struct virtio_test t;
  struct vsock* v = 0;
  if (!virtio_test_open(&t, g, name, "vsock", VIRTIO_ID_VSOCK, VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX)))
    goto out;
  v = pool_alloc(sizeof(*v), 64);
  if (!v) {
    report_fail(name, "out-of-memory");
    goto out;
  }
  v->t = t;
  v->port = (uint32_t)bench_option(g, IGN_OPT_VSOCK_PORT, DEFAULT_PORT, 0, 0xffffffffu);
  v->pkt = (uint32_t)bench_option(g, IGN_OPT_BENCH_SIZE, MAX_PKT, 8, MAX_PKT) & ~7u;
  uint64_t total = bench_option(g, IGN_OPT_VSOCK_BYTES, DEFAULT_BYTES, 1, 1ull << 40);
  if (!virtio_test_queue(&v->t, &v->rxq, 0, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->txq, 1, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->evq, 2, EVENT_BUFS))
    goto out;
  if (!setup(v)) {
    report_fail(name, "out-of-memory");
    goto out;
  }
  v->cid = virtio_config_read64(&v->t.dev, VSOCK_CFG_GUEST_CID);
  report_info("bench.vsock.setup=cid=%lu port=%u pkt=%u bytes=%lu", v->cid, v->port, v->pkt, total);
  bench_report_clock("bench.vsock");
  if (v->cid <= VSOCK_HOST_CID) {
    report_fail(name, "bad-guest-cid cid=%lu", v->cid);
  } else if (stream(v, total)) {
    report_pass(name, "bytes=%lu pkt=%u bad=%u", total, v->pkt, v->bad_packets);
  }
out:
  virtio_test_close(v ? &v->t : &t);
}
