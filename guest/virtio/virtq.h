/* Split virtqueues for the ring-3 driver: descriptor table, available and used rings in pool
 * memory, descriptor chains added and reclaimed by the driver, notifications suppressed with
 * VIRTIO_F_RING_EVENT_IDX when it was negotiated (else VIRTQ_USED_F_NO_NOTIFY). Completions are
 * found by polling the used ring; virtio/irq.h adds waiting for the device's interrupt. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "mmio.h"

#define VIRTQ_MAX_SIZE 256

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};

/* One buffer of a chain: the device reads it, or (device_writes) writes it. */
struct virtq_buf {
  uint64_t addr;
  uint32_t len;
  bool device_writes;
};

struct virtq {
  struct virtio_dev* dev;
  uint16_t index;
  uint16_t size;
  bool event_idx;
  volatile struct virtq_desc* desc;
  volatile uint16_t* avail; /* flags, idx, ring[size], used_event */
  volatile uint16_t* used;  /* flags, idx, then ring[size] of virtq_used_elem, avail_event */
  uint16_t avail_idx;       /* the driver's copy of avail->idx */
  uint16_t kicked_idx;      /* avail_idx when the device was last notified */
  uint16_t last_used;       /* next used entry to reclaim */
  uint16_t free_head;
  uint16_t num_free;
  /* The free list and chain lengths live here, not in the shared descriptor table, so a
   * device (or an evil test) writing descriptors cannot corrupt them. */
  uint16_t next_free[VIRTQ_MAX_SIZE];
  uint16_t chain_len[VIRTQ_MAX_SIZE];
  uint64_t notifies;   /* notifications sent */
  uint64_t suppressed; /* notifications the device said it did not need */
};

/* Selects queue `index`, sizes it (min of want, QueueNumMax, VIRTQ_MAX_SIZE, rounded down to
 * a power of two), allocates its rings and sets QueueReady. Returns 0 or why it failed. Call
 * after virtio_init and before virtio_driver_ok. */
const char* virtq_setup(struct virtq* q, struct virtio_dev* d, uint16_t index, uint16_t want);
/* Adds a chain of n buffers and publishes it in the available ring (without notifying).
 * Returns the head descriptor index, or -1 if there are not enough free descriptors. */
int virtq_add(struct virtq* q, const struct virtq_buf* bufs, int n);
/* Notifies the device of new available buffers, unless it asked not to be. */
void virtq_kick(struct virtq* q);
/* Takes the next used element: returns its head (and the length the device wrote) and frees
 * the chain, or -1 if the device has not used anything new. */
int virtq_pop(struct virtq* q, uint32_t* len);
/* Polls for the next used element for up to timeout_us; -1 on timeout. */
int virtq_wait(struct virtq* q, uint32_t* len, uint64_t timeout_us);
/* The used ring's index as the device last wrote it. */
uint16_t virtq_used_idx(const struct virtq* q);
/* Adds one chain, notifies and waits for it: the common synchronous request. Returns the
 * length the device wrote, or -1 on a full queue or a timeout (or a different head). */
int64_t virtq_transfer(struct virtq* q, const struct virtq_buf* bufs, int n, uint64_t timeout_us);

/* Size in bytes of each ring for a queue of `size` entries. */
#define VIRTQ_DESC_BYTES(size) (16u * (size))
#define VIRTQ_AVAIL_BYTES(size) (6u + 2u * (size))
#define VIRTQ_USED_BYTES(size) (6u + 8u * (size))
