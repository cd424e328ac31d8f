/* The virtio-vsock driver the vsock guest tests share (virtio_vsock.c, bench_vsock.c): the
 * 44-byte packet header, receive buffers kept posted (header and data descriptors, the layout
 * every vsock device accepts), transmit slots, the event queue, and each connection's credit.
 * Polled from ring 3; received packets go to the test's handler. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "virtio_common.h"

#define VSOCK_HOST_CID 2
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RCV 1
#define VSOCK_SHUTDOWN_SEND 2
#define VSOCK_SHUTDOWN_BOTH 3

#define VSOCK_TX_SLOTS 32
#define VSOCK_MAX_PKT 65536            /* the most data a packet may carry */
#define VSOCK_CREDIT_REQUEST_US 100000 /* at most this often, while out of credit */

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

/* One stream's addresses and its credit both ways. */
struct vsock_conn {
  uint32_t local_port, peer_port;
  uint32_t buf_alloc;                    /* the receive space we advertise */
  uint32_t fwd_cnt;                      /* bytes we received and are done with */
  uint32_t tx_cnt;                       /* bytes we sent */
  uint32_t peer_buf_alloc, peer_fwd_cnt; /* from the peer's latest header */
  uint64_t next_credit_request;          /* TSC deadline for the next CREDIT_REQUEST */
  uint32_t credit_waits;                 /* CREDIT_REQUESTs sent */
};

struct vsock;
/* A received packet; `data` holds h->len bytes (already checked against what arrived). */
typedef void (*vsock_packet_fn)(struct vsock* v, const struct vsock_hdr* h, const uint8_t* data);

struct vsock {
  struct virtio_test t;
  struct virtq rxq, txq, evq;
  uint64_t cid;
  bool quiet; /* ask the device for no interrupts at all (benchmarks) */
  uint32_t slot_size;
  struct vsock_hdr* rx_hdr;
  uint8_t* rx_data;
  int16_t rx_of_head[VIRTQ_MAX_SIZE];
  struct vsock_hdr* tx_hdr;
  uint8_t* tx_data;
  bool tx_busy[VSOCK_TX_SLOTS];
  int16_t tx_of_head[VIRTQ_MAX_SIZE];
  uint32_t* events;
  vsock_packet_fn on_packet;
  void* owner;               /* the test's own state, for on_packet */
  uint32_t bad_packets;      /* short, or for another CID, or longer than what arrived */
  uint32_t transport_resets; /* events: every connection is gone */
  uint32_t resets_sent;      /* RSTs for packets that matched nothing */
};

/* Finds and starts the device for test `name` with transmit slots of `slot_size` data bytes
 * (at most VSOCK_MAX_PKT); reports vsock.device/features. Returns pool memory holding the
 * driver, or 0 after reporting IGN-FAIL (the device is then closed again). */
struct vsock* vsock_open(struct guest* g, const char* name, uint32_t slot_size, bool quiet,
                         vsock_packet_fn on_packet, void* owner);
/* Resets the device and gives back the pool memory (v included). */
void vsock_close(struct vsock* v);

/* Takes whatever the device has finished: received packets (to on_packet; their buffers are
 * posted again), completed transmissions, events. */
void vsock_poll(struct vsock* v);

/* A free transmit slot, or -1; vsock_wait_slot polls for one up to timeout_us. */
int vsock_free_slot(struct vsock* v);
int vsock_wait_slot(struct vsock* v, uint64_t timeout_us);
uint8_t* vsock_slot_data(struct vsock* v, int slot);
/* Queues the packet in `slot` (its `len` data bytes already in place) on c, to `peer_cid`,
 * without notifying the device; RW data counts against the peer's credit. */
bool vsock_queue(struct vsock* v, struct vsock_conn* c, int slot, uint64_t peer_cid, uint16_t op,
                 uint32_t flags, uint32_t len);
/* A data-less packet to the host, sent at once (waits up to 1 s for a slot). */
bool vsock_send_ctrl(struct vsock* v, struct vsock_conn* c, uint16_t op, uint32_t flags);
/* RST for a packet that belongs to no connection (never for an RST). */
void vsock_reject(struct vsock* v, const struct vsock_hdr* h);

/* Takes the peer's credit from a header it sent on c. */
void vsock_conn_update(struct vsock_conn* c, const struct vsock_hdr* h);
/* Whether h came from the host on c. */
bool vsock_conn_matches(const struct vsock_conn* c, const struct vsock_hdr* h);
/* What the peer can take now, rounded down to a multiple of `align` (a power of two); when
 * that is 0, asks the peer for an update (at most every VSOCK_CREDIT_REQUEST_US, in case an
 * update was lost or the peer only sends them when asked). */
uint32_t vsock_credit(struct vsock* v, struct vsock_conn* c, uint32_t align);
