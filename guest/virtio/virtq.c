/* See virtq.h. */
#include "virtq.h"

#include "cpu.h"
#include "pool.h"
#include "time.h"

/* x86 keeps stores in order and loads in order; what needs a full fence is a store followed by
 * a load of another location (publishing avail->idx, then reading the device's avail_event). */
static inline void compiler_barrier(void) {
  __asm__ volatile("" ::: "memory");
}
static inline void full_barrier(void) {
  __asm__ volatile("mfence" ::: "memory");
}

#define AVAIL_FLAGS 0
#define AVAIL_IDX 1
#define AVAIL_RING 2
#define USED_FLAGS 0
#define USED_IDX 1

static volatile struct virtq_used_elem* used_ring(const struct virtq* q) {
  return (volatile struct virtq_used_elem*)(q->used + 2);
}
static volatile uint16_t* used_event(const struct virtq* q) {
  return &q->avail[AVAIL_RING + q->size];
}
static volatile uint16_t* avail_event(const struct virtq* q) {
  return (volatile uint16_t*)&used_ring(q)[q->size];
}

const char* virtq_setup(struct virtq* q, struct virtio_dev* d, uint16_t index, uint16_t want) {
  virtio_write(d, VIRTIO_MMIO_QUEUE_SEL, index);
  if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY)) return "queue-already-ready";
  uint32_t max = virtio_read(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
  if (max == 0) return "queue-unavailable";
  uint32_t size = want;
  if (size > max) size = max;
  if (size > VIRTQ_MAX_SIZE) size = VIRTQ_MAX_SIZE;
  while (size & (size - 1)) size &= size - 1;

  *q = (struct virtq){.dev = d, .index = index, .size = (uint16_t)size};
  q->event_idx = virtio_has(d, VIRTIO_F_RING_EVENT_IDX);
  q->desc = pool_alloc(VIRTQ_DESC_BYTES(size), PAGE_SIZE);
  q->avail = pool_alloc(VIRTQ_AVAIL_BYTES(size), PAGE_SIZE);
  q->used = pool_alloc(VIRTQ_USED_BYTES(size), PAGE_SIZE);
  if (!q->desc || !q->avail || !q->used) return "out-of-memory";
  for (uint32_t i = 0; i < size; i++) q->next_free[i] = (uint16_t)(i + 1);
  q->num_free = (uint16_t)size;

  virtio_write(d, VIRTIO_MMIO_QUEUE_NUM, size);
  uint64_t desc = (uint64_t)q->desc, avail = (uint64_t)q->avail, used = (uint64_t)q->used;
  virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
  virtio_write(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
  virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
  virtio_write(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
  virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
  virtio_write(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
  virtio_write(d, VIRTIO_MMIO_QUEUE_READY, 1);
  if (virtio_read(d, VIRTIO_MMIO_QUEUE_READY) != 1) return "queue-not-ready";
  return 0;
}

int virtq_add(struct virtq* q, const struct virtq_buf* bufs, int n) {
  if (n <= 0 || n > q->num_free) return -1;
  uint16_t head = q->free_head, i = head;
  for (int k = 0; k < n; k++) {
    uint16_t next = q->next_free[i];
    q->desc[i].addr = bufs[k].addr;
    q->desc[i].len = bufs[k].len;
    q->desc[i].flags = (uint16_t)((bufs[k].device_writes ? VIRTQ_DESC_F_WRITE : 0) |
                                  (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    q->desc[i].next = k + 1 < n ? next : 0;
    if (k + 1 < n)
      i = next;
    else
      q->free_head = next;
  }
  q->num_free = (uint16_t)(q->num_free - n);
  q->chain_len[head] = (uint16_t)n;
  q->avail[AVAIL_RING + q->avail_idx % q->size] = head;
  compiler_barrier(); /* the ring entry before the index that publishes it */
  q->avail[AVAIL_IDX] = ++q->avail_idx;
  return head;
}

void virtq_kick(struct virtq* q) {
  uint16_t old = q->kicked_idx, now = q->avail_idx;
  if (old == now) return; /* nothing new since the last notification */
  full_barrier();
  bool needed;
  if (q->event_idx) {
    uint16_t event = *avail_event(q);
    needed = (uint16_t)(now - event - 1) < (uint16_t)(now - old);
  } else {
    needed = !(q->used[USED_FLAGS] & VIRTQ_USED_F_NO_NOTIFY);
  }
  q->kicked_idx = now;
  if (needed) {
    virtio_write(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
    q->notifies++;
  } else {
    q->suppressed++;
  }
}

uint16_t virtq_used_idx(const struct virtq* q) {
  return q->used[USED_IDX];
}

int virtq_pop(struct virtq* q, uint32_t* len) {
  if (virtq_used_idx(q) == q->last_used) return -1;
  compiler_barrier(); /* the index before the entry it covers */
  volatile struct virtq_used_elem* e = &used_ring(q)[q->last_used % q->size];
  uint32_t head = e->id;
  if (len) *len = e->len;
  q->last_used++;
  if (q->event_idx) *used_event(q) = q->last_used;           /* interrupt on the next one */
  if (head >= q->size || q->chain_len[head] == 0) return -2; /* a head we never posted */
  uint16_t n = q->chain_len[head], tail = (uint16_t)head;
  for (uint16_t k = 1; k < n; k++) tail = q->next_free[tail];
  q->next_free[tail] = q->free_head;
  q->free_head = (uint16_t)head;
  q->num_free = (uint16_t)(q->num_free + n);
  q->chain_len[head] = 0;
  return (int)head;
}

int virtq_wait(struct virtq* q, uint32_t* len, uint64_t timeout_us) {
  uint64_t deadline = deadline_after_us(timeout_us);
  for (;;) {
    int head = virtq_pop(q, len);
    if (head != -1) return head < 0 ? -1 : head;
    if (deadline_passed(deadline)) return -1;
    cpu_relax();
  }
}

int64_t virtq_transfer(struct virtq* q, const struct virtq_buf* bufs, int n, uint64_t timeout_us) {
  int head = virtq_add(q, bufs, n);
  if (head < 0) return -1;
  virtq_kick(q);
  uint32_t len;
  if (virtq_wait(q, &len, timeout_us) != head) return -1;
  return len;
}
