/* virtio-vsock: stream connections both ways, several at once, every byte checkable.
 *  1. The guest opens ign.vsock.conns= (default 1, at most MAX_CONNS) connections to the host
 *     (CID 2) on port ign.vsock.port= (default 1234), from local ports 49152 + i, and sends
 *     ign.vsock.bytes= (default 4 MiB) on each, interleaved, within the peer's credit.
 *     Connection i carries the xorshift64 stream seeded with STREAM_SEED + i (byte o is byte
 *     o % 8, little-endian, of word o / 8), so the host can check every byte. It reports
 *     vsock.sent=<n> fnv1a64=<h> credit_waits=<k> conn=<i> for each, then closes them all
 *     (SHUTDOWN; the host's RST ends it, or its SHUTDOWN, answered with RST):
 *     vsock.client_close=<how>[,<how>...].
 *  2. It prints vsock.listening=<port> (ign.vsock.listen=, default 1235), accepts that many
 *     connections from the host and echoes everything back on each until the host shuts down
 *     its sending side, then closes it. For each: vsock.accepted=<i> peer_port=<p>
 *     received=<n> fnv1a64=<h> echoed=<n> (the hash of what arrived, so the host can check
 *     its stream without trusting the echo); then vsock.echoed=<total> ... and
 *     vsock.server_close=<how>[,...].
 * Credit: we never send more than the peer's buf_alloc - (tx_cnt - fwd_cnt), ask with
 * CREDIT_REQUEST when that is 0, and answer its CREDIT_REQUEST. What we receive for echoing
 * waits in a per-connection ring of ECHO_BUF bytes, which is the buf_alloc we advertise;
 * fwd_cnt counts what we have sent back out of it. */
#include "bench_common.h"
#include "cpu.h"
#include "ign_protocol.h"
#include "pool.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "vsock_common.h"

/* How many connections each way (ign_protocol.h has the other vsock options). */
#define OPT_VSOCK_CONNS "ign.vsock.conns="
#define MAX_CONNS 8
#define PKT_DATA 4096
#define ECHO_BUF 65536 /* our buf_alloc */
#define CONNECT_TIMEOUT_US 5000000
#define STREAM_TIMEOUT_US 60000000
#define ACCEPT_TIMEOUT_US 10000000
#define CLOSE_TIMEOUT_US 2000000
#define DEFAULT_PORT 1234
#define DEFAULT_LISTEN 1235
#define DEFAULT_BYTES (4u << 20)
#define CLIENT_LOCAL_PORT 49152
#define STREAM_SEED 0x9e3779b97f4a7c15ull
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

enum conn_state { FREE, CONNECTING, CONNECTED, CLOSING, CLOSED };

/* The bytes a client connection sends. */
struct stream {
  uint64_t state, word;
  uint32_t used; /* bytes of word already sent */
};

struct conn {
  struct vsock_conn v;
  enum conn_state state;
  const char* how; /* how it ended */
  uint32_t peer_shutdown;
  uint64_t close_deadline;
  struct stream stream; /* client: what it sends */
  uint32_t sent;
  uint64_t hash; /* client: of what was sent; server: of what arrived */
  uint8_t* echo; /* server: ECHO_BUF, a ring */
  uint32_t echo_head, echo_len, received, echoed, overruns;
};

struct test {
  struct vsock* v;
  int conns;
  struct conn client[MAX_CONNS], server[MAX_CONNS];
  int accepted;
  uint32_t listen_port; /* 0 until the server phase */
};

static uint8_t stream_byte(struct stream* s) {
  if (s->used == 8) {
    s->state ^= s->state << 13;
    s->state ^= s->state >> 7;
    s->state ^= s->state << 17;
    s->word = s->state;
    s->used = 0;
  }
  return (uint8_t)(s->word >> (8 * s->used++));
}

static struct conn* find_conn(struct test* T, const struct vsock_hdr* h) {
  for (int i = 0; i < T->conns; i++) {
    struct conn* c = &T->client[i];
    if (c->state != FREE && c->state != CLOSED && vsock_conn_matches(&c->v, h)) return c;
    c = &T->server[i];
    if (c->state != FREE && c->state != CLOSED && vsock_conn_matches(&c->v, h)) return c;
  }
  return 0;
}

static void accept_conn(struct test* T, const struct vsock_hdr* h) {
  struct conn* c = &T->server[T->accepted++];
  uint8_t* echo = c->echo;
  *c = (struct conn){
      .v = {.local_port = h->dst_port, .peer_port = h->src_port, .buf_alloc = ECHO_BUF},
      .state = CONNECTED,
      .hash = FNV_OFFSET,
      .echo = echo};
  vsock_conn_update(&c->v, h);
  vsock_send_ctrl(T->v, &c->v, VSOCK_OP_RESPONSE, 0);
}

static void take_data(struct conn* c, const uint8_t* data, uint32_t len) {
  if (!c->echo) {
    c->v.fwd_cnt += len; /* a client expects nothing: consumed (dropped) at once */
    return;
  }
  if (len > ECHO_BUF - c->echo_len) { /* the peer ignored our credit */
    c->overruns++;
    len = ECHO_BUF - c->echo_len;
  }
  for (uint32_t i = 0; i < len; i++) {
    c->echo[(c->echo_head + c->echo_len + i) % ECHO_BUF] = data[i];
    c->hash = (c->hash ^ data[i]) * FNV_PRIME;
  }
  c->echo_len += len;
  c->received += len;
}

static void on_packet(struct vsock* v, const struct vsock_hdr* h, const uint8_t* data) {
  struct test* T = v->owner;
  if (h->type != VSOCK_TYPE_STREAM) {
    v->bad_packets++;
    vsock_reject(v, h);
    return;
  }
  struct conn* c = find_conn(T, h);
  if (!c) {
    if (h->op == VSOCK_OP_REQUEST && T->listen_port && h->dst_port == T->listen_port &&
        h->src_cid == VSOCK_HOST_CID && T->accepted < T->conns)
      accept_conn(T, h);
    else
      vsock_reject(v, h);
    return;
  }
  vsock_conn_update(&c->v, h);
  switch (h->op) {
    case VSOCK_OP_RESPONSE:
      if (c->state == CONNECTING) c->state = CONNECTED;
      break;
    case VSOCK_OP_RST:
      c->how = c->state == CLOSING ? "rst" : c->state == CONNECTING ? "refused" : "reset-by-peer";
      c->state = CLOSED;
      break;
    case VSOCK_OP_SHUTDOWN:
      c->peer_shutdown |= h->flags & VSOCK_SHUTDOWN_BOTH;
      break;
    case VSOCK_OP_RW:
      take_data(c, data, h->len);
      break;
    case VSOCK_OP_CREDIT_REQUEST:
      vsock_send_ctrl(v, &c->v, VSOCK_OP_CREDIT_UPDATE, 0);
      break;
    case VSOCK_OP_CREDIT_UPDATE:
      break; /* the header carried it */
    default:
      v->bad_packets++;
  }
}

/* Polls, and moves closing connections on: the peer's RST ended them (on_packet), or its own
 * SHUTDOWN both ways, which we acknowledge with RST, or the deadline. */
static void step(struct test* T) {
  vsock_poll(T->v);
  for (int i = 0; i < 2 * T->conns; i++) {
    struct conn* c = i < T->conns ? &T->client[i] : &T->server[i - T->conns];
    if (T->v->transport_resets && c->state != FREE && c->state != CLOSED) {
      c->how = "transport-reset";
      c->state = CLOSED;
    }
    if (c->state != CLOSING) continue;
    if (c->peer_shutdown == VSOCK_SHUTDOWN_BOTH) {
      vsock_send_ctrl(T->v, &c->v, VSOCK_OP_RST, 0);
      c->how = "shutdown";
      c->state = CLOSED;
    } else if (deadline_passed(c->close_deadline)) {
      c->how = "timeout";
      c->state = CLOSED;
    }
  }
}

static void start_close(struct test* T, struct conn* c) {
  if (c->state != CONNECTED) return;
  vsock_send_ctrl(T->v, &c->v, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_BOTH);
  c->state = CLOSING;
  c->close_deadline = deadline_after_us(CLOSE_TIMEOUT_US);
}

static int count_in(const struct conn* conns, int n, enum conn_state state) {
  int k = 0;
  for (int i = 0; i < n; i++) k += conns[i].state == state;
  return k;
}

/* "rst,rst,..." for the connections' endings. */
static const char* endings(const struct conn* conns, int n, char* buf, size_t size) {
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    const char* how = conns[i].how ? conns[i].how : "open";
    if (i && at + 1 < size) buf[at++] = ',';
    for (; *how && at + 1 < size; how++) buf[at++] = *how;
  }
  buf[at] = 0;
  return buf;
}

/* Closes every live connection in conns and waits for them to end. */
static void close_all(struct test* T, struct conn* conns) {
  for (int i = 0; i < T->conns; i++) start_close(T, &conns[i]);
  while (count_in(conns, T->conns, CLOSING)) step(T);
}

static bool client_phase(struct test* T, uint32_t port, uint32_t total) {
  const char* name = IGN_TEST_VIRTIO_VSOCK;
  for (int i = 0; i < T->conns; i++) {
    struct conn* c = &T->client[i];
    *c = (struct conn){.v = {.local_port = CLIENT_LOCAL_PORT + (uint32_t)i,
                             .peer_port = port,
                             .buf_alloc = ECHO_BUF},
                       .state = CONNECTING,
                       .stream = {.state = STREAM_SEED + (uint64_t)i, .used = 8},
                       .hash = FNV_OFFSET};
    if (!vsock_send_ctrl(T->v, &c->v, VSOCK_OP_REQUEST, 0)) c->state = CLOSED;
  }
  uint64_t deadline = deadline_after_us(CONNECT_TIMEOUT_US);
  while (count_in(T->client, T->conns, CONNECTING) && !deadline_passed(deadline)) step(T);
  for (int i = 0; i < T->conns; i++) {
    if (T->client[i].state != CONNECTED) {
      report_fail(name, "connect %s port=%u conn=%d",
                  T->client[i].state == CONNECTING ? "timeout" : "refused", port, i);
      close_all(T, T->client);
      return false;
    }
  }
  /* Round-robin: one packet per connection per pass, so all streams are in flight at once. */
  deadline = deadline_after_us(STREAM_TIMEOUT_US);
  bool busy = true;
  while (busy && !deadline_passed(deadline)) {
    step(T);
    busy = false;
    bool queued = false;
    for (int i = 0; i < T->conns; i++) {
      struct conn* c = &T->client[i];
      if (c->state != CONNECTED || c->sent == total) continue;
      busy = true;
      uint32_t credit = vsock_credit(T->v, &c->v, 1);
      int slot = credit ? vsock_free_slot(T->v) : -1;
      if (slot < 0) continue;
      uint32_t n = total - c->sent;
      if (n > PKT_DATA) n = PKT_DATA;
      if (n > credit) n = credit;
      uint8_t* data = vsock_slot_data(T->v, slot);
      for (uint32_t k = 0; k < n; k++) {
        data[k] = stream_byte(&c->stream);
        c->hash = (c->hash ^ data[k]) * FNV_PRIME;
      }
      if (!vsock_queue(T->v, &c->v, slot, VSOCK_HOST_CID, VSOCK_OP_RW, 0, n)) break;
      c->sent += n;
      queued = true;
    }
    if (queued) virtq_kick(&T->v->txq);
  }
  bool complete = true;
  for (int i = 0; i < T->conns; i++) {
    const struct conn* c = &T->client[i];
    report_info("vsock.sent=%u fnv1a64=0x%016lx credit_waits=%u conn=%d", c->sent, c->hash,
                c->v.credit_waits, i);
    complete = complete && c->sent == total;
  }
  close_all(T, T->client);
  char how[MAX_CONNS * 20];
  report_info("vsock.client_close=%s", endings(T->client, T->conns, how, sizeof(how)));
  if (!complete) {
    report_fail(name, "send-incomplete total=%u", total);
    return false;
  }
  return true;
}

/* Sends back what waits in c's ring, as far as the host's credit goes. */
static bool echo_some(struct test* T, struct conn* c) {
  uint32_t n = c->echo_len, credit = vsock_credit(T->v, &c->v, 1);
  if (n > PKT_DATA) n = PKT_DATA;
  if (n > credit) n = credit;
  int slot = n ? vsock_free_slot(T->v) : -1;
  if (slot < 0) return false;
  uint8_t* data = vsock_slot_data(T->v, slot);
  for (uint32_t i = 0; i < n; i++) data[i] = c->echo[(c->echo_head + i) % ECHO_BUF];
  c->echo_head = (c->echo_head + n) % ECHO_BUF;
  c->echo_len -= n;
  c->v.fwd_cnt += n; /* our buffer space is free again: the packet itself tells the host */
  if (!vsock_queue(T->v, &c->v, slot, VSOCK_HOST_CID, VSOCK_OP_RW, 0, n)) return false;
  c->echoed += n;
  return true;
}

static bool server_phase(struct test* T, uint32_t port) {
  const char* name = IGN_TEST_VIRTIO_VSOCK;
  T->listen_port = port;
  report_info(IGN_INFO_VSOCK_LISTENING "=%u", port);
  uint64_t accept_deadline = deadline_after_us(ACCEPT_TIMEOUT_US);
  uint64_t deadline = deadline_after_us(STREAM_TIMEOUT_US);
  while (T->accepted < T->conns || count_in(T->server, T->conns, CLOSED) < T->accepted) {
    if (deadline_passed(deadline) || (T->accepted < T->conns && deadline_passed(accept_deadline)))
      break;
    step(T);
    bool queued = false;
    for (int i = 0; i < T->accepted; i++) {
      struct conn* c = &T->server[i];
      if (c->state != CONNECTED) continue;
      if (c->echo_len) {
        queued |= echo_some(T, c);
      } else if (c->peer_shutdown & VSOCK_SHUTDOWN_SEND) {
        start_close(T, c); /* all echoed, nothing more coming */
      }
    }
    if (queued) virtq_kick(&T->v->txq);
  }
  close_all(T, T->server);
  uint32_t echoed = 0, received = 0, overruns = 0, credit_waits = 0;
  bool ok = T->accepted == T->conns;
  for (int i = 0; i < T->accepted; i++) {
    const struct conn* c = &T->server[i];
    report_info("vsock.accepted=%d peer_port=%u received=%u fnv1a64=0x%016lx echoed=%u", i,
                c->v.peer_port, c->received, c->hash, c->echoed);
    echoed += c->echoed;
    received += c->received;
    overruns += c->overruns;
    credit_waits += c->v.credit_waits;
    ok = ok && (c->peer_shutdown & VSOCK_SHUTDOWN_SEND) && c->echoed == c->received && !c->overruns;
  }
  char how[MAX_CONNS * 20];
  report_info("vsock.server_close=%s", endings(T->server, T->accepted, how, sizeof(how)));
  report_info("vsock.echoed=%u received=%u overruns=%u credit_waits=%u", echoed, received, overruns,
              credit_waits);
  if (T->accepted < T->conns) {
    report_fail(name, "no-connection port=%u accepted=%d of %d", port, T->accepted, T->conns);
  } else if (!ok) {
    report_fail(name, "echo-incomplete echoed=%u received=%u overruns=%u", echoed, received,
                overruns);
  }
  return ok;
}

void test_virtio_vsock(struct guest* g) {
  const char* name = IGN_TEST_VIRTIO_VSOCK;
  struct vsock* v = vsock_open(g, name, PKT_DATA, false, on_packet, 0);
  if (!v) return;
  struct test* T = pool_alloc(sizeof(*T), 64);
  int conns = (int)bench_option(g, OPT_VSOCK_CONNS, 1, 1, MAX_CONNS);
  for (int i = 0; T && i < conns; i++) {
    T->server[i].echo = pool_alloc(ECHO_BUF, PAGE_SIZE);
    if (!T->server[i].echo) T = 0;
  }
  if (!T) {
    report_fail(name, "out-of-memory");
    vsock_close(v);
    return;
  }
  T->v = v;
  T->conns = conns;
  v->owner = T;
  report_info("vsock.guest_cid=%lu", v->cid);
  uint32_t port = (uint32_t)bench_option(g, IGN_OPT_VSOCK_PORT, DEFAULT_PORT, 0, 0xffffffffu);
  uint32_t listen = (uint32_t)bench_option(g, IGN_OPT_VSOCK_LISTEN, DEFAULT_LISTEN, 0, 0xffffffffu);
  uint32_t bytes = (uint32_t)bench_option(g, IGN_OPT_VSOCK_BYTES, DEFAULT_BYTES, 0, 0xffffffffu);
  if (v->cid <= VSOCK_HOST_CID) {
    report_fail(name, "bad-guest-cid cid=%lu", v->cid);
  } else if (client_phase(T, port, bytes) && server_phase(T, listen)) {
    uint32_t echoed = 0;
    for (int i = 0; i < conns; i++) echoed += T->server[i].echoed;
    report_pass(name, "conns=%d sent=%lu echoed=%u bad=%u resets_sent=%u", conns,
                (uint64_t)bytes * (uint64_t)conns, echoed, v->bad_packets, v->resets_sent);
  }
  if (v->transport_resets) report_info("vsock.transport_resets=%u", v->transport_resets);
  vsock_close(v);
}
