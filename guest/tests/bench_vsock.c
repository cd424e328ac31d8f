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
#include "vsock_common.h"

#define BUF_ALLOC 65536 /* what we advertise; we never keep received data */
#define LOCAL_PORT 49153
#define DEFAULT_PORT 1234
#define DEFAULT_BYTES (64ull << 20)
#define CONNECT_TIMEOUT_US 5000000
#define STREAM_TIMEOUT_US 60000000
#define CLOSE_TIMEOUT_US 10000000

enum state { CONNECTING, CONNECTED, RESET };

struct bench {
  struct vsock* v;
  struct vsock_conn conn;
  enum state state;
};

static void on_packet(struct vsock* v, const struct vsock_hdr* h, const uint8_t* data) {
  (void)data;
  struct bench* b = v->owner;
  if (h->type != VSOCK_TYPE_STREAM || !vsock_conn_matches(&b->conn, h)) {
    v->bad_packets++;
    return;
  }
  vsock_conn_update(&b->conn, h);
  switch (h->op) {
    case VSOCK_OP_RESPONSE:
      if (b->state == CONNECTING) b->state = CONNECTED;
      break;
    case VSOCK_OP_RST:
      b->state = RESET;
      break;
    case VSOCK_OP_RW:
      b->conn.fwd_cnt += h->len; /* consumed (dropped) at once */
      break;
    case VSOCK_OP_CREDIT_REQUEST:
      vsock_send_ctrl(v, &b->conn, VSOCK_OP_CREDIT_UPDATE, 0);
      break;
    default: /* CREDIT_UPDATE: the header alone carries it; SHUTDOWN: we are closing anyway */
      break;
  }
}

static void poll(struct bench* b) {
  vsock_poll(b->v);
  if (b->v->transport_resets) b->state = RESET; /* every connection is gone */
}

static void fill(uint8_t* p, uint64_t offset, uint32_t len) {
  for (uint32_t k = 0; k < len; k += 8) {
    uint64_t w = offset + k;
    memcpy(p + k, &w, sizeof(w));
  }
}

static bool stream(struct bench* b, uint64_t total) {
  const char* name = IGN_TEST_BENCH_VSOCK;
  struct vsock* v = b->v;
  uint64_t deadline = deadline_after_us(CONNECT_TIMEOUT_US);
  b->state = CONNECTING;
  if (!vsock_send_ctrl(v, &b->conn, VSOCK_OP_REQUEST, 0)) {
    report_fail(name, "connect no-tx-slot");
    return false;
  }
  while (b->state == CONNECTING && !deadline_passed(deadline)) poll(b);
  if (b->state != CONNECTED) {
    report_fail(name, "connect %s port=%u", b->state == RESET ? "refused" : "timeout",
                b->conn.peer_port);
    return false;
  }
  uint64_t sent = 0;
  uint32_t credit_waits = 0;
  bool waiting = false;
  deadline = deadline_after_us(STREAM_TIMEOUT_US);
  uint64_t start = rdtsc();
  while (sent < total && b->state == CONNECTED && !deadline_passed(deadline)) {
    poll(b);
    bool added = false;
    int i;
    while (sent < total && (i = vsock_free_slot(v)) >= 0) {
      /* Whole words only, so every packet starts at a multiple of 8 in the stream. */
      uint32_t c = vsock_credit(v, &b->conn, 8);
      if (c == 0) {
        if (!waiting) credit_waits++;
        waiting = true;
        break;
      }
      waiting = false;
      uint32_t n = total - sent < v->slot_size ? (uint32_t)(total - sent) : v->slot_size;
      if (n > c) n = c;
      fill(vsock_slot_data(v, i), sent, n);
      if (!vsock_queue(v, &b->conn, i, VSOCK_HOST_CID, VSOCK_OP_RW, 0, n)) break;
      sent += n;
      added = true;
    }
    if (added) virtq_kick(&v->txq);
  }
  uint64_t sent_ticks = rdtsc() - start;
  if (sent != total) {
    report_fail(name, "send-incomplete sent=%lu total=%lu state=%d", sent, total, b->state);
    return false;
  }
  if (!vsock_send_ctrl(v, &b->conn, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH)) {
    report_fail(name, "shutdown no-tx-slot");
    return false;
  }
  deadline = deadline_after_us(CLOSE_TIMEOUT_US);
  while (b->state == CONNECTED && !deadline_passed(deadline)) poll(b);
  uint64_t ticks = rdtsc() - start;
  if (b->state != RESET) {
    report_fail(name, "no-rst-after-shutdown sent=%lu", sent);
    return false;
  }
  report_info("bench.vsock.tx=bytes=%lu pkt=%u ns=%lu sent_ns=%lu credit_waits=%u", sent,
              v->slot_size, bench_ns(ticks), bench_ns(sent_ticks), credit_waits);
  return true;
}

void test_bench_vsock(struct guest* g) {
  const char* name = IGN_TEST_BENCH_VSOCK;
  uint32_t port = (uint32_t)bench_option(g, IGN_OPT_VSOCK_PORT, DEFAULT_PORT, 0, 0xffffffffu);
  uint32_t pkt =
      (uint32_t)bench_option(g, IGN_OPT_BENCH_SIZE, VSOCK_MAX_PKT, 8, VSOCK_MAX_PKT) & ~7u;
  uint64_t total = bench_option(g, IGN_OPT_VSOCK_BYTES, DEFAULT_BYTES, 1, 1ull << 40);
  struct bench b = {.conn = {.local_port = LOCAL_PORT, .peer_port = port, .buf_alloc = BUF_ALLOC}};
  b.v = vsock_open(g, name, pkt, true, on_packet, &b);
  if (!b.v) return;
  report_info("bench.vsock.setup=cid=%lu port=%u pkt=%u bytes=%lu", b.v->cid, port, pkt, total);
  bench_report_clock("bench.vsock");
  if (b.v->cid <= VSOCK_HOST_CID) {
    report_fail(name, "bad-guest-cid cid=%lu", b.v->cid);
  } else if (stream(&b, total)) {
    report_pass(name, "bytes=%lu pkt=%u bad=%u", total, pkt, b.v->bad_packets);
  }
  vsock_close(b.v);
}
