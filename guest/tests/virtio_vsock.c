/* virtio-vsock: the stream protocol over the rx/tx/event queues. Two phases:
 *  1. The guest connects to the host (CID 2) on ign.vsock.port= (default 1234), sends
 *     ign.vsock.bytes= (default 4 MiB) of a pseudo-random stream within the peer's credit, and
 *     reports the count and FNV-1a 64 of what it sent (vsock.sent=<n> fnv1a64=<h>); then
 *     SHUTDOWN and waits for the host's RST (or its SHUTDOWN, answered with RST).
 *  2. It prints vsock.listening=<port> (ign.vsock.listen=, default 1235), accepts one
 *     connection from the host and echoes everything back until the host shuts down its
 *     sending side, then closes (SHUTDOWN, RST) and reports vsock.echoed=<n>.
 * Credit: every packet carries buf_alloc and fwd_cnt; we never send more than the peer's
 * buf_alloc - (tx_cnt - fwd_cnt), ask with CREDIT_REQUEST when that is 0, and answer its
 * CREDIT_REQUEST. What we receive for echoing waits in a buffer of ECHO_BUF bytes, which is the
 * buf_alloc we advertise; fwd_cnt counts what we have sent back out of it.
 * Receive buffers are two descriptors (44-byte header, then data), the layout every vsock
 * device accepts; transmit chains are the same, without the data descriptor when empty. */
#include "cmdline.h"
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
#define SHUTDOWN_RCV 1
#define SHUTDOWN_SEND 2
#define EVENT_TRANSPORT_RESET 0

#define QUEUE_SIZE 128
#define PKT_DATA 4096
#define RX_BUFS 32 /* two descriptors each */
#define TX_SLOTS 32
#define EVENT_BUFS 4
#define ECHO_BUF 65536 /* our buf_alloc */
#define CONNECT_TIMEOUT_US 5000000
#define STREAM_TIMEOUT_US 60000000
#define ACCEPT_TIMEOUT_US 10000000
#define CLOSE_TIMEOUT_US 2000000
#define CREDIT_REQUEST_US 100000
#define DEFAULT_PORT 1234
#define DEFAULT_LISTEN 1235
#define DEFAULT_BYTES (4u << 20)
#define CLIENT_LOCAL_PORT 49152

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

enum conn_state { CLOSED, CONNECTING, CONNECTED, RESET };

struct conn {
  enum conn_state state;
  uint32_t local_port, peer_port;
  uint32_t peer_buf_alloc, peer_fwd_cnt; /* from the peer's latest header */
  uint32_t tx_cnt;                       /* bytes we sent */
  uint32_t fwd_cnt;                      /* bytes we received and are done with */
  uint32_t rx_bytes;
  uint32_t peer_shutdown; /* SHUTDOWN_* flags the peer sent */
  bool echo;              /* the accepted connection: data goes to the echo buffer */
};

struct tx_slot {
  struct vsock_hdr hdr;
  uint8_t data[PKT_DATA];
};

struct vsock {
  struct virtio_test t;
  struct virtq rxq, txq, evq;
  uint64_t cid;
  struct vsock_hdr* rx_hdr; /* RX_BUFS */
  uint8_t* rx_data;         /* RX_BUFS * PKT_DATA */
  int16_t rx_of_head[VIRTQ_MAX_SIZE];
  struct tx_slot* tx; /* TX_SLOTS */
  bool tx_busy[TX_SLOTS];
  int16_t tx_of_head[VIRTQ_MAX_SIZE];
  uint32_t* events; /* EVENT_BUFS */
  uint32_t listen_port;
  struct conn client, server;
  uint8_t* echo; /* ECHO_BUF, a ring */
  uint32_t echo_head, echo_len;
  uint32_t bad_packets, resets_sent, transport_resets, overruns;
};

static void post_rx(struct vsock* v, int i) {
  struct virtq_buf b[2] = {{(uint64_t)&v->rx_hdr[i], sizeof(struct vsock_hdr), true},
                           {(uint64_t)v->rx_data + (uint64_t)i * PKT_DATA, PKT_DATA, true}};
  int head = virtq_add(&v->rxq, b, 2);
  if (head >= 0) v->rx_of_head[head] = (int16_t)i;
}

static void reclaim_tx(struct vsock* v) {
  int head;
  while ((head = virtq_pop(&v->txq, 0)) >= 0) {
    if (v->tx_of_head[head] >= 0) v->tx_busy[v->tx_of_head[head]] = false;
    v->tx_of_head[head] = -1;
  }
}

/* A free transmit slot, waiting (bounded) for the device to finish with one. */
static struct tx_slot* tx_slot(struct vsock* v, int* index) {
  uint64_t deadline = deadline_after_us(1000000);
  for (;;) {
    reclaim_tx(v);
    for (int i = 0; i < TX_SLOTS; i++) {
      if (!v->tx_busy[i]) {
        *index = i;
        return &v->tx[i];
      }
    }
    if (deadline_passed(deadline)) return 0;
    cpu_relax();
  }
}

/* Sends a packet whose data (len bytes) is already in the slot. */
static bool send_slot(struct vsock* v, struct conn* c, int slot, uint64_t peer_cid, uint16_t op,
                      uint32_t flags, uint32_t len) {
  struct tx_slot* s = &v->tx[slot];
  s->hdr = (struct vsock_hdr){.src_cid = v->cid,
                              .dst_cid = peer_cid,
                              .src_port = c->local_port,
                              .dst_port = c->peer_port,
                              .len = len,
                              .type = VSOCK_TYPE_STREAM,
                              .op = op,
                              .flags = flags,
                              .buf_alloc = ECHO_BUF,
                              .fwd_cnt = c->fwd_cnt};
  struct virtq_buf b[2] = {{(uint64_t)&s->hdr, sizeof(s->hdr), false},
                           {(uint64_t)s->data, len, false}};
  int head = virtq_add(&v->txq, b, len ? 2 : 1);
  if (head < 0) return false;
  v->tx_busy[slot] = true;
  v->tx_of_head[head] = (int16_t)slot;
  virtq_kick(&v->txq);
  if (op == OP_RW) c->tx_cnt += len;
  return true;
}

static bool send_ctrl(struct vsock* v, struct conn* c, uint16_t op, uint32_t flags) {
  int slot;
  return tx_slot(v, &slot) && send_slot(v, c, slot, VSOCK_HOST_CID, op, flags, 0);
}

/* RST for a packet that belongs to no connection (the reply swaps its addresses). */
static void send_rst_to(struct vsock* v, const struct vsock_hdr* h) {
  struct conn tmp = {.local_port = h->dst_port, .peer_port = h->src_port};
  int slot;
  if (tx_slot(v, &slot) && send_slot(v, &tmp, slot, h->src_cid, OP_RST, 0, 0)) v->resets_sent++;
}

static uint32_t peer_credit(const struct conn* c) {
  uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
  return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* The peer's credit; when it is 0, asks for an update (at most every CREDIT_REQUEST_US, in
 * case an update was lost or the peer only sends them when asked). */
static uint32_t credit_or_ask(struct vsock* v, struct conn* c, uint64_t* next_request,
                              uint32_t* asked) {
  uint32_t credit = peer_credit(c);
  if (credit == 0 && rdtsc() >= *next_request) {
    send_ctrl(v, c, OP_CREDIT_REQUEST, 0);
    ++*asked;
    *next_request = deadline_after_us(CREDIT_REQUEST_US);
  }
  return credit;
}

static void take_data(struct vsock* v, struct conn* c, const uint8_t* data, uint32_t len) {
  c->rx_bytes += len;
  if (!c->echo) {
    c->fwd_cnt += len; /* nothing expected here: consumed (dropped) at once */
    return;
  }
  if (len > ECHO_BUF - v->echo_len) { /* the peer ignored our credit */
    v->overruns++;
    len = ECHO_BUF - v->echo_len;
  }
  for (uint32_t i = 0; i < len; i++) v->echo[(v->echo_head + v->echo_len + i) % ECHO_BUF] = data[i];
  v->echo_len += len;
}

static void handle_packet(struct vsock* v, const struct vsock_hdr* h, const uint8_t* data,
                          uint32_t data_len) {
  if (h->dst_cid != v->cid || h->type != VSOCK_TYPE_STREAM || h->len > data_len) {
    v->bad_packets++;
    if (h->op != OP_RST) send_rst_to(v, h);
    return;
  }
  struct conn* c = 0;
  if (v->client.state != CLOSED && h->dst_port == v->client.local_port &&
      h->src_port == v->client.peer_port && h->src_cid == VSOCK_HOST_CID)
    c = &v->client;
  else if (v->server.state != CLOSED && h->dst_port == v->server.local_port &&
           h->src_port == v->server.peer_port && h->src_cid == VSOCK_HOST_CID)
    c = &v->server;
  if (!c) {
    if (h->op == OP_REQUEST && h->dst_port == v->listen_port && v->listen_port &&
        v->server.state == CLOSED && h->src_cid == VSOCK_HOST_CID) {
      v->server = (struct conn){.state = CONNECTED,
                                .local_port = h->dst_port,
                                .peer_port = h->src_port,
                                .peer_buf_alloc = h->buf_alloc,
                                .peer_fwd_cnt = h->fwd_cnt,
                                .echo = true};
      send_ctrl(v, &v->server, OP_RESPONSE, 0);
    } else if (h->op != OP_RST) {
      send_rst_to(v, h);
    }
    return;
  }
  c->peer_buf_alloc = h->buf_alloc;
  c->peer_fwd_cnt = h->fwd_cnt;
  switch (h->op) {
    case OP_RESPONSE:
      if (c->state == CONNECTING) c->state = CONNECTED;
      break;
    case OP_RST:
      c->state = RESET;
      break;
    case OP_SHUTDOWN:
      c->peer_shutdown |= h->flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
      break;
    case OP_RW:
      take_data(v, c, data, h->len);
      break;
    case OP_CREDIT_REQUEST:
      send_ctrl(v, c, OP_CREDIT_UPDATE, 0);
      break;
    case OP_CREDIT_UPDATE:
      break;
    default:
      v->bad_packets++;
  }
}

/* Everything the device has for us: received packets, finished transmissions, events. */
static void poll(struct vsock* v) {
  uint32_t len;
  int head;
  bool refilled = false;
  while ((head = virtq_pop(&v->rxq, &len)) >= 0) {
    int i = v->rx_of_head[head];
    if (i < 0) continue;
    if (len >= sizeof(struct vsock_hdr)) {
      handle_packet(v, &v->rx_hdr[i], v->rx_data + (uint64_t)i * PKT_DATA,
                    (uint32_t)(len - sizeof(struct vsock_hdr)));
    } else {
      v->bad_packets++;
    }
    post_rx(v, i);
    refilled = true;
  }
  if (refilled) virtq_kick(&v->rxq);
  reclaim_tx(v);
  while ((head = virtq_pop(&v->evq, &len)) >= 0) {
    if (v->events[head % EVENT_BUFS] == EVENT_TRANSPORT_RESET) {
      v->transport_resets++;
      if (v->client.state != CLOSED) v->client.state = RESET;
      if (v->server.state != CLOSED) v->server.state = RESET;
    }
    struct virtq_buf b = {(uint64_t)&v->events[head % EVENT_BUFS], sizeof(uint32_t), true};
    virtq_add(&v->evq, &b, 1);
    virtq_kick(&v->evq);
  }
}

/* The stream the client sends: xorshift64, so the host can only match it by receiving it all. */
static uint64_t next_word(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

static uint32_t option_u32(struct guest* g, const char* prefix, uint32_t def) {
  struct str s;
  uint64_t v;
  if (!cmdline_option(&g->boot, prefix, &s) || !parse_u64(s, true, &v) || v > 0xffffffffu)
    return def;
  return (uint32_t)v;
}

/* Waits until cond(v) or the deadline; polls the device meanwhile. */
static bool wait_for(struct vsock* v, bool (*cond)(const struct vsock* v), uint64_t timeout_us) {
  uint64_t deadline = deadline_after_us(timeout_us);
  while (!cond(v)) {
    if (deadline_passed(deadline)) return false;
    poll(v);
    cpu_relax();
  }
  return true;
}
static bool client_settled(const struct vsock* v) {
  return v->client.state != CONNECTING;
}
static bool server_arrived(const struct vsock* v) {
  return v->server.state != CLOSED;
}

/* Clean close: SHUTDOWN both ways, then the peer's RST ends it; if the peer answers with its
 * own SHUTDOWN instead, we send the RST. Returns how it ended. */
static const char* close_conn(struct vsock* v, struct conn* c) {
  if (c->state != CONNECTED) return "reset-by-peer";
  send_ctrl(v, c, OP_SHUTDOWN, SHUTDOWN_RCV | SHUTDOWN_SEND);
  uint64_t deadline = deadline_after_us(CLOSE_TIMEOUT_US);
  const char* how = "timeout";
  while (!deadline_passed(deadline)) {
    poll(v);
    if (c->state == RESET) {
      how = "rst";
      break;
    }
    if ((c->peer_shutdown & (SHUTDOWN_RCV | SHUTDOWN_SEND)) == (SHUTDOWN_RCV | SHUTDOWN_SEND)) {
      send_ctrl(v, c, OP_RST, 0);
      how = "shutdown";
      break;
    }
    cpu_relax();
  }
  c->state = CLOSED;
  return how;
}

static bool client_phase(struct vsock* v, uint32_t port, uint32_t total) {
  const char* name = IGN_TEST_VIRTIO_VSOCK;
  struct conn* c = &v->client;
  *c = (struct conn){.state = CONNECTING, .local_port = CLIENT_LOCAL_PORT, .peer_port = port};
  if (!send_ctrl(v, c, OP_REQUEST, 0) || !wait_for(v, client_settled, CONNECT_TIMEOUT_US) ||
      c->state != CONNECTED) {
    report_fail(name, "connect %s port=%u", c->state == RESET ? "refused" : "timeout", port);
    return false;
  }
  uint64_t state = 0x9e3779b97f4a7c15ull, hash = 0xcbf29ce484222325ull;
  uint32_t sent = 0, credit_waits = 0;
  uint64_t deadline = deadline_after_us(STREAM_TIMEOUT_US), next_credit_request = 0;
  while (sent < total && c->state == CONNECTED && !deadline_passed(deadline)) {
    poll(v);
    uint32_t credit = credit_or_ask(v, c, &next_credit_request, &credit_waits);
    if (credit == 0) continue;
    int slot;
    struct tx_slot* s = tx_slot(v, &slot);
    if (!s) break;
    uint32_t n = total - sent;
    if (n > PKT_DATA) n = PKT_DATA;
    if (n > credit) n = credit;
    for (uint32_t i = 0; i < n; i += 8) {
      uint64_t w = next_word(&state);
      for (uint32_t k = 0; k < 8 && i + k < n; k++) {
        uint8_t byte = (uint8_t)(w >> (8 * k));
        s->data[i + k] = byte;
        hash = (hash ^ byte) * 0x100000001b3ull;
      }
    }
    if (!send_slot(v, c, slot, VSOCK_HOST_CID, OP_RW, 0, n)) break;
    sent += n;
  }
  report_info("vsock.sent=%u fnv1a64=0x%016lx credit_waits=%u", sent, hash, credit_waits);
  report_info("vsock.client_close=%s", close_conn(v, c));
  if (sent != total) {
    report_fail(name, "send-incomplete sent=%u total=%u", sent, total);
    return false;
  }
  return true;
}

static bool server_phase(struct vsock* v, uint32_t port, uint32_t* echoed) {
  const char* name = IGN_TEST_VIRTIO_VSOCK;
  struct conn* c = &v->server;
  v->listen_port = port;
  report_info(IGN_INFO_VSOCK_LISTENING "=%u", port);
  if (!wait_for(v, server_arrived, ACCEPT_TIMEOUT_US)) {
    report_fail(name, "no-connection port=%u", port);
    return false;
  }
  uint64_t deadline = deadline_after_us(STREAM_TIMEOUT_US), next_credit_request = 0;
  uint32_t credit_waits = 0;
  *echoed = 0;
  while (c->state == CONNECTED && !deadline_passed(deadline)) {
    poll(v);
    if (v->echo_len == 0) {
      if (c->peer_shutdown & SHUTDOWN_SEND) break; /* all echoed, nothing more coming */
      continue;
    }
    uint32_t n = v->echo_len, credit = credit_or_ask(v, c, &next_credit_request, &credit_waits);
    if (n > PKT_DATA) n = PKT_DATA;
    if (n > credit) n = credit;
    if (n == 0) continue;
    int slot;
    struct tx_slot* s = tx_slot(v, &slot);
    if (!s) break;
    for (uint32_t i = 0; i < n; i++) s->data[i] = v->echo[(v->echo_head + i) % ECHO_BUF];
    v->echo_head = (v->echo_head + n) % ECHO_BUF;
    v->echo_len -= n;
    c->fwd_cnt += n; /* our buffer space is free again: the packet itself tells the host */
    if (!send_slot(v, c, slot, VSOCK_HOST_CID, OP_RW, 0, n)) break;
    *echoed += n;
  }
  bool peer_done = c->peer_shutdown & SHUTDOWN_SEND;
  report_info("vsock.server_close=%s", close_conn(v, c));
  report_info("vsock.echoed=%u received=%u peer_shutdown=%u overruns=%u credit_waits=%u", *echoed,
              c->rx_bytes, c->peer_shutdown, v->overruns, credit_waits);
  c->state = CLOSED;
  if (!peer_done || *echoed != c->rx_bytes || v->overruns) {
    report_fail(name, "echo-incomplete echoed=%u received=%u peer_shutdown=%u overruns=%u", *echoed,
                c->rx_bytes, c->peer_shutdown, v->overruns);
    return false;
  }
  return true;
}

static bool setup(struct vsock* v) {
  v->rx_hdr = pool_alloc(RX_BUFS * sizeof(struct vsock_hdr), 64);
  v->rx_data = pool_alloc((uint64_t)RX_BUFS * PKT_DATA, PAGE_SIZE);
  v->tx = pool_alloc(TX_SLOTS * sizeof(struct tx_slot), 64);
  v->events = pool_alloc(EVENT_BUFS * sizeof(uint32_t), 64);
  v->echo = pool_alloc(ECHO_BUF, PAGE_SIZE);
  if (!v->rx_hdr || !v->rx_data || !v->tx || !v->events || !v->echo) {
    report_fail(IGN_TEST_VIRTIO_VSOCK, "out-of-memory");
    return false;
  }
  for (int i = 0; i < VIRTQ_MAX_SIZE; i++) v->rx_of_head[i] = v->tx_of_head[i] = -1;
  virtio_driver_ok(&v->t.dev);
  for (int i = 0; i < RX_BUFS; i++) post_rx(v, i);
  virtq_kick(&v->rxq);
  for (int i = 0; i < EVENT_BUFS; i++) {
    struct virtq_buf b = {(uint64_t)&v->events[i], sizeof(uint32_t), true};
    virtq_add(&v->evq, &b, 1);
  }
  virtq_kick(&v->evq);
  return true;
}

void test_virtio_vsock(struct guest* g) {
  struct virtio_test t;
  struct vsock* v = 0;
  if (!virtio_test_open(&t, g, IGN_TEST_VIRTIO_VSOCK, "vsock", VIRTIO_ID_VSOCK,
                        VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX)))
    goto out;
  v = pool_alloc(sizeof(*v), 64);
  if (!v) {
    report_fail(IGN_TEST_VIRTIO_VSOCK, "out-of-memory");
    goto out;
  }
  v->t = t;
  if (!virtio_test_queue(&v->t, &v->rxq, 0, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->txq, 1, QUEUE_SIZE) ||
      !virtio_test_queue(&v->t, &v->evq, 2, EVENT_BUFS) || !setup(v))
    goto out;
  v->cid = virtio_config_read64(&v->t.dev, VSOCK_CFG_GUEST_CID);
  report_info("vsock.guest_cid=%lu", v->cid);
  uint32_t port = option_u32(g, IGN_OPT_VSOCK_PORT, DEFAULT_PORT);
  uint32_t listen = option_u32(g, IGN_OPT_VSOCK_LISTEN, DEFAULT_LISTEN);
  uint32_t bytes = option_u32(g, IGN_OPT_VSOCK_BYTES, DEFAULT_BYTES);
  uint32_t echoed = 0;
  if (v->cid <= VSOCK_HOST_CID) {
    report_fail(IGN_TEST_VIRTIO_VSOCK, "bad-guest-cid cid=%lu", v->cid);
  } else if (client_phase(v, port, bytes) && server_phase(v, listen, &echoed)) {
    report_pass(IGN_TEST_VIRTIO_VSOCK, "sent=%u echoed=%u bad=%u resets_sent=%u", bytes, echoed,
                v->bad_packets, v->resets_sent);
  }
  if (v->transport_resets) report_info("vsock.transport_resets=%u", v->transport_resets);
out:
  virtio_test_close(v ? &v->t : &t);
}
