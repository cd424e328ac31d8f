/* See vsock_common.h. */
#include "vsock_common.h"

#include "bench_common.h"
#include "cpu.h"
#include "pool.h"
#include "report.h"
#include "time.h"

#define VSOCK_CFG_GUEST_CID 0
#define EVENT_TRANSPORT_RESET 0
#define QUEUE_SIZE 128
#define RX_BUFS 32 /* two descriptors each */
#define RX_DATA 4096
#define EVENT_BUFS 4
#define SLOT_TIMEOUT_US 1000000

static void post_rx(struct vsock* v, int i) {
  struct virtq_buf b[2] = {{(uint64_t)&v->rx_hdr[i], sizeof(struct vsock_hdr), true},
                           {(uint64_t)v->rx_data + (uint64_t)i * RX_DATA, RX_DATA, true}};
  int head = virtq_add(&v->rxq, b, 2);
  if (head >= 0) v->rx_of_head[head] = (int16_t)i;
}

static void post_event(struct vsock* v, int i) {
  struct virtq_buf b = {(uint64_t)&v->events[i], sizeof(uint32_t), true};
  virtq_add(&v->evq, &b, 1);
}

/* After every pop: with interrupts unwanted, park used_event again. */
static void quiet(struct vsock* v, struct virtq* q) {
  if (v->quiet) bench_quiet(q);
}

static bool setup(struct vsock* v) {
  v->rx_hdr = pool_alloc(RX_BUFS * sizeof(struct vsock_hdr), 64);
  v->rx_data = pool_alloc((uint64_t)RX_BUFS * RX_DATA, PAGE_SIZE);
  v->tx_hdr = pool_alloc(VSOCK_TX_SLOTS * sizeof(struct vsock_hdr), 64);
  v->tx_data = pool_alloc((uint64_t)VSOCK_TX_SLOTS * v->slot_size, PAGE_SIZE);
  v->events = pool_alloc(EVENT_BUFS * sizeof(uint32_t), 64);
  if (!v->rx_hdr || !v->rx_data || !v->tx_hdr || !v->tx_data || !v->events) return false;
  for (int i = 0; i < VIRTQ_MAX_SIZE; i++) v->rx_of_head[i] = v->tx_of_head[i] = -1;
  virtio_driver_ok(&v->t.dev);
  quiet(v, &v->rxq);
  quiet(v, &v->txq);
  quiet(v, &v->evq);
  for (int i = 0; i < RX_BUFS; i++) post_rx(v, i);
  virtq_kick(&v->rxq);
  for (int i = 0; i < EVENT_BUFS; i++) post_event(v, i);
  virtq_kick(&v->evq);
  return true;
}

struct vsock* vsock_open(struct guest* g, const char* name, uint32_t slot_size, bool quiet_dev,
                         vsock_packet_fn on_packet, void* owner) {
  struct virtio_test t;
  if (!virtio_test_open(&t, g, name, "vsock", VIRTIO_ID_VSOCK,
                        VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX))) {
    virtio_test_close(&t);
    return 0;
  }
  struct vsock* v = pool_alloc(sizeof(*v), 64);
  if (!v) {
    report_fail(name, "out-of-memory");
    virtio_test_close(&t);
    return 0;
  }
  v->t = t;
  v->quiet = quiet_dev;
  v->slot_size = slot_size > VSOCK_MAX_PKT ? VSOCK_MAX_PKT : slot_size;
  v->on_packet = on_packet;
  v->owner = owner;
  if (!virtio_test_queue(&v->t, &v->rxq, 0, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->txq, 1, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->evq, 2, EVENT_BUFS)) {
    vsock_close(v);
    return 0;
  }
  if (!setup(v)) {
    report_fail(name, "out-of-memory");
    vsock_close(v);
    return 0;
  }
  v->cid = virtio_config_read64(&v->t.dev, VSOCK_CFG_GUEST_CID);
  return v;
}

void vsock_close(struct vsock* v) {
  struct virtio_test t = v->t; /* v lives in the memory the close gives back */
  virtio_test_close(&t);
}

static void reclaim_tx(struct vsock* v) {
  int head;
  while ((head = virtq_pop(&v->txq, 0)) >= 0) {
    if (v->tx_of_head[head] >= 0) v->tx_busy[v->tx_of_head[head]] = false;
    v->tx_of_head[head] = -1;
  }
  quiet(v, &v->txq);
}

void vsock_poll(struct vsock* v) {
  uint32_t len;
  int head;
  bool reposted = false;
  while ((head = virtq_pop(&v->rxq, &len)) >= 0) {
    int i = v->rx_of_head[head];
    if (i < 0) continue;
    const struct vsock_hdr* h = &v->rx_hdr[i];
    if (len < sizeof(struct vsock_hdr) || h->dst_cid != v->cid ||
        h->len > len - sizeof(struct vsock_hdr)) {
      v->bad_packets++;
    } else {
      v->on_packet(v, h, v->rx_data + (uint64_t)i * RX_DATA);
    }
    post_rx(v, i);
    reposted = true;
  }
  quiet(v, &v->rxq);
  if (reposted) virtq_kick(&v->rxq);
  reclaim_tx(v);
  while ((head = virtq_pop(&v->evq, &len)) >= 0) {
    if (v->events[head % EVENT_BUFS] == EVENT_TRANSPORT_RESET) v->transport_resets++;
    post_event(v, head % EVENT_BUFS);
    virtq_kick(&v->evq);
  }
  quiet(v, &v->evq);
}

int vsock_free_slot(struct vsock* v) {
  for (int i = 0; i < VSOCK_TX_SLOTS; i++)
    if (!v->tx_busy[i]) return i;
  return -1;
}

int vsock_wait_slot(struct vsock* v, uint64_t timeout_us) {
  uint64_t deadline = deadline_after_us(timeout_us);
  int slot;
  while ((slot = vsock_free_slot(v)) < 0) {
    if (deadline_passed(deadline)) return -1;
    reclaim_tx(v);
    cpu_relax();
  }
  return slot;
}

uint8_t* vsock_slot_data(struct vsock* v, int slot) {
  return v->tx_data + (uint64_t)slot * v->slot_size;
}

bool vsock_queue(struct vsock* v, struct vsock_conn* c, int slot, uint64_t peer_cid, uint16_t op,
                 uint32_t flags, uint32_t len) {
  struct vsock_hdr* h = &v->tx_hdr[slot];
  *h = (struct vsock_hdr){.src_cid = v->cid,
                          .dst_cid = peer_cid,
                          .src_port = c->local_port,
                          .dst_port = c->peer_port,
                          .len = len,
                          .type = VSOCK_TYPE_STREAM,
                          .op = op,
                          .flags = flags,
                          .buf_alloc = c->buf_alloc,
                          .fwd_cnt = c->fwd_cnt};
  struct virtq_buf b[2] = {{(uint64_t)h, sizeof(*h), false},
                           {(uint64_t)vsock_slot_data(v, slot), len, false}};
  int head = virtq_add(&v->txq, b, len ? 2 : 1);
  if (head < 0) return false;
  v->tx_busy[slot] = true;
  v->tx_of_head[head] = (int16_t)slot;
  if (op == VSOCK_OP_RW) c->tx_cnt += len;
  return true;
}

bool vsock_send_ctrl(struct vsock* v, struct vsock_conn* c, uint16_t op, uint32_t flags) {
  int slot = vsock_wait_slot(v, SLOT_TIMEOUT_US);
  if (slot < 0 || !vsock_queue(v, c, slot, VSOCK_HOST_CID, op, flags, 0)) return false;
  virtq_kick(&v->txq);
  return true;
}

void vsock_reject(struct vsock* v, const struct vsock_hdr* h) {
  if (h->op == VSOCK_OP_RST) return;
  struct vsock_conn tmp = {.local_port = h->dst_port, .peer_port = h->src_port};
  int slot = vsock_wait_slot(v, SLOT_TIMEOUT_US);
  if (slot >= 0 && vsock_queue(v, &tmp, slot, h->src_cid, VSOCK_OP_RST, 0, 0)) {
    virtq_kick(&v->txq);
    v->resets_sent++;
  }
}

void vsock_conn_update(struct vsock_conn* c, const struct vsock_hdr* h) {
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
}

bool vsock_conn_matches(const struct vsock_conn* c, const struct vsock_hdr* h) {
  return h->src_cid == VSOCK_HOST_CID && h->dst_port == c->local_port &&
         h->src_port == c->peer_port;
}

uint32_t vsock_credit(struct vsock* v, struct vsock_conn* c, uint32_t align) {
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  uint32_t credit = in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
  credit &= ~(align - 1);
  if (credit == 0 && rdtsc() >= c->next_credit_request) {
    vsock_send_ctrl(v, c, VSOCK_OP_CREDIT_REQUEST, 0);
    c->credit_waits++;
    c->next_credit_request = deadline_after_us(VSOCK_CREDIT_REQUEST_US);
  }
  return credit;
}
