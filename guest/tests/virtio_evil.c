/* virtio-evil: a misbehaving driver. After DRIVER_OK it posts descriptor chains a device must
 * not trust (addresses beyond RAM, in the MMIO gap or wrapping around 2^64, a looped chain, a
 * next index past the queue, lengths whose sum wraps 32 bits, an available index that jumps
 * past the queue size, a head index out of range), indirect descriptors it never negotiated,
 * and resizes a queue while it runs. Each case starts from a reset device and reports what the
 * device did: IGN-INFO evil.<case>=[needs-reset] [used id=<i> len=<n>] [no-response]
 * status=<s> -> rejected | accepted | ignored. "IGN-INFO evil.case=<case>" comes first, so a
 * host whose device model dies on a case can tell which one.
 * Verdict: the guest must survive every case, the device must work again after a reset, and
 * every strict case must be rejected (NEEDS_RESET, or used with length 0) or ignored (never
 * used): a device that reports bytes transferred for such a chain (for blk: with status OK)
 * "accepted" it. The last two
 * cases are informational: the spec forbids them to drivers without saying what a device does.
 * The device is ign.evil.device=rng (default: a request is one device-writable buffer) or blk
 * (the evil descriptors are the data of a read request: header before, status byte after). */
#include "cmdline.h"
#include "cpu.h"
#include "pool.h"
#include "print.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define QUEUE_SIZE 8
#define BUF_LEN 1024
#define SECTOR_BYTES 512 /* an honest request: one sector for blk, 512 bytes of rng */
#define OBSERVE_US 300000
#define BEYOND_RAM 0x1000000000ull  /* 64 GiB */
#define MMIO_GAP_HOLE 0xe0000000ull /* in the gap, with no device (ignition or QEMU microvm) */

struct evil {
  struct guest* g;
  struct virtio_test t;
  struct virtq q;
  uint8_t* buf;
  uint8_t* blk_frame; /* blk: request header (16 bytes) and status byte */
  uint64_t case_mark;
  uint16_t used_before;
  char accepted[160]; /* strict cases the device accepted, comma-separated */
  struct strbuf accepted_list;
};

static uint32_t device_id_option(struct guest* g) {
  struct str v;
  if (!cmdline_option(&g->boot, IGN_OPT_EVIL_DEVICE, &v) || str_eq(v, "rng")) return VIRTIO_ID_RNG;
  if (str_eq(v, "blk")) return VIRTIO_ID_BLOCK;
  return 0;
}

/* A freshly reset device with queue 0 ready and DRIVER_OK set. */
static bool fresh(struct evil* e) {
  pool_release(e->case_mark);
  const char* err = virtio_init(&e->t.dev, 0);
  if (!err) err = virtq_setup(&e->q, &e->t.dev, 0, QUEUE_SIZE);
  e->buf = pool_alloc(BUF_LEN, 64);
  e->blk_frame = pool_alloc(32, 16);
  if (err || !e->buf || !e->blk_frame) {
    report_info("evil.setup=%s", err ? err : "out-of-memory");
    return false;
  }
  virtio_driver_ok(&e->t.dev);
  e->used_before = virtq_used_idx(&e->q);
  return true;
}

static void set_desc(struct evil* e, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                     uint16_t next) {
  e->q.desc[i] = (struct virtq_desc){addr, len, flags, next};
}

#define BLK_HEADER_DESC (QUEUE_SIZE - 2)
#define BLK_STATUS_DESC (QUEUE_SIZE - 1)
#define NO_LAST 0xffff

/* Makes descriptors first..last (already set; last = NO_LAST if the chain never ends) into a
 * request for this device; returns the head to publish. rng takes them as they are; blk needs
 * a read request's header in front and a status byte behind. */
static uint16_t frame(struct evil* e, uint16_t first, uint16_t last) {
  if (e->t.dev.device_id != VIRTIO_ID_BLOCK) return first;
  memset(e->blk_frame, 0, 16); /* VIRTIO_BLK_T_IN, sector 0 */
  e->blk_frame[16] = 0xff;
  set_desc(e, BLK_HEADER_DESC, (uint64_t)e->blk_frame, 16, VIRTQ_DESC_F_NEXT, first);
  set_desc(e, BLK_STATUS_DESC, (uint64_t)e->blk_frame + 16, 1, VIRTQ_DESC_F_WRITE, 0);
  if (last != NO_LAST) {
    e->q.desc[last].flags |= VIRTQ_DESC_F_NEXT;
    e->q.desc[last].next = BLK_STATUS_DESC;
  }
  return BLK_HEADER_DESC;
}

/* Publishes `head` in the available ring, moves the index by `step` and notifies. */
static void publish(struct evil* e, uint16_t head, uint16_t step) {
  struct virtq* q = &e->q;
  q->avail[2 + q->avail_idx % q->size] = head;
  q->avail_idx = (uint16_t)(q->avail_idx + step);
  __asm__ volatile("mfence" ::: "memory");
  q->avail[1] = q->avail_idx;
  virtio_write(&e->t.dev, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

/* Waits for a reaction and reports it, with the verdict; true if the chain was accepted. */
static bool observe(struct evil* e, const char* name) {
  uint64_t deadline = deadline_after_us(OBSERVE_US);
  uint32_t status = 0;
  bool used = false;
  while (!deadline_passed(deadline)) {
    status = virtio_status(&e->t.dev);
    used = virtq_used_idx(&e->q) != e->used_before;
    if ((status & VIRTIO_STATUS_NEEDS_RESET) || used) break;
    cpu_relax();
  }
  delay_us(1000); /* let a device that completed and then flagged an error do both */
  status = virtio_status(&e->t.dev);
  used = virtq_used_idx(&e->q) != e->used_before;
  bool needs_reset = status & VIRTIO_STATUS_NEEDS_RESET;
  char what[112];
  struct strbuf b = {what, sizeof(what), 0};
  uint32_t len = 0;
  if (needs_reset) sbprintf(&b, "needs-reset ");
  if (used) {
    volatile struct virtq_used_elem* u = (volatile struct virtq_used_elem*)(e->q.used + 2);
    len = u[e->used_before % e->q.size].len;
    sbprintf(&b, "used id=%u len=%u ", u[e->used_before % e->q.size].id, len);
  }
  if (!needs_reset && !used) sbprintf(&b, "no-response ");
  bool accepted = used && len > 0 && !needs_reset;
  if (used && e->t.dev.device_id == VIRTIO_ID_BLOCK) {
    uint8_t blk_status = *(volatile uint8_t*)(e->blk_frame + 16);
    sbprintf(&b, "blk_status=%u ", blk_status);
    accepted = accepted && blk_status == 0; /* VIRTIO_BLK_S_OK */
  }
  sbprintf(&b, "status=0x%x -> %s", status,
           accepted                ? "accepted"
           : (needs_reset || used) ? "rejected"
                                   : "ignored");
  report_info("evil.%s=%s", name, what);
  return accepted;
}

/* One case: reset, set up, let `post` misbehave, observe. A strict case the device accepts
 * counts against it. */
static void run_case(struct evil* e, const char* name, bool strict, void (*post)(struct evil* e)) {
  report_info("evil.case=%s", name);
  if (!fresh(e)) return;
  post(e);
  if (observe(e, name) && strict)
    sbprintf(&e->accepted_list, "%s%s", e->accepted_list.len ? "," : "", name);
}

static void beyond_ram(struct evil* e) {
  set_desc(e, 0, BEYOND_RAM, BUF_LEN, VIRTQ_DESC_F_WRITE, 0);
  publish(e, frame(e, 0, 0), 1);
}
static void mmio_gap(struct evil* e) {
  set_desc(e, 0, MMIO_GAP_HOLE, BUF_LEN, VIRTQ_DESC_F_WRITE, 0);
  publish(e, frame(e, 0, 0), 1);
}
static void addr_wrap(struct evil* e) {
  set_desc(e, 0, 0xfffffffffffff000ull, 0x2000, VIRTQ_DESC_F_WRITE, 0);
  publish(e, frame(e, 0, 0), 1);
}
static void looped_chain(struct evil* e) {
  set_desc(e, 0, (uint64_t)e->buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  set_desc(e, 1, (uint64_t)e->buf + 16, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 0);
  publish(e, frame(e, 0, NO_LAST), 1);
}
static void next_out_of_range(struct evil* e) {
  set_desc(e, 0, (uint64_t)e->buf, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, QUEUE_SIZE + 10);
  publish(e, frame(e, 0, NO_LAST), 1);
}
static void head_out_of_range(struct evil* e) {
  set_desc(e, 0, (uint64_t)e->buf, BUF_LEN, VIRTQ_DESC_F_WRITE, 0);
  publish(e, QUEUE_SIZE + 3, 1);
}
static void avail_idx_jump(struct evil* e) {
  set_desc(e, 0, (uint64_t)e->buf, BUF_LEN, VIRTQ_DESC_F_WRITE, 0);
  uint16_t head = frame(e, 0, 0);
  for (int i = 0; i < QUEUE_SIZE; i++) e->q.avail[2 + i] = head;
  publish(e, head, QUEUE_SIZE + 5);
}
/* Two descriptors of 2^31 + 2^12 bytes: their sum wraps a 32-bit length. */
static void len_wrap(struct evil* e) {
  set_desc(e, 0, (uint64_t)e->buf, 0x80001000u, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  set_desc(e, 1, (uint64_t)e->buf, 0x80001000u, VIRTQ_DESC_F_WRITE, 0);
  publish(e, frame(e, 0, 1), 1);
}
static void indirect_not_negotiated(struct evil* e) {
  volatile struct virtq_desc* table = (volatile struct virtq_desc*)e->buf;
  table[0] = (struct virtq_desc){(uint64_t)e->buf + 32, 32, VIRTQ_DESC_F_WRITE, 0};
  set_desc(e, 0, (uint64_t)e->buf, 16, VIRTQ_DESC_F_INDIRECT, 0);
  publish(e, frame(e, 0, 0), 1);
}
/* QueueNum rewritten while the queue is live, then an honest request. */
static void resize_live(struct evil* e) {
  virtio_write(&e->t.dev, VIRTIO_MMIO_QUEUE_SEL, 0);
  virtio_write(&e->t.dev, VIRTIO_MMIO_QUEUE_NUM, QUEUE_SIZE / 2);
  set_desc(e, 0, (uint64_t)e->buf, SECTOR_BYTES, VIRTQ_DESC_F_WRITE, 0);
  publish(e, frame(e, 0, 0), 1);
}

/* After everything, an honest driver must get an honest answer. */
static bool recovered(struct evil* e) {
  if (!fresh(e)) return false;
  struct virtq_buf b[3] = {{(uint64_t)e->blk_frame, 16, false},
                           {(uint64_t)e->buf, SECTOR_BYTES, true},
                           {(uint64_t)e->blk_frame + 16, 1, true}};
  bool blk = e->t.dev.device_id == VIRTIO_ID_BLOCK;
  int64_t len =
      blk ? virtq_transfer(&e->q, b, 3, 2000000) : virtq_transfer(&e->q, &b[1], 1, 2000000);
  if (blk && e->blk_frame[16] != 0) len = -1; /* status must be VIRTIO_BLK_S_OK */
  report_info("evil.recovered=%s len=%ld status=0x%x", len >= 0 ? "yes" : "no", len,
              virtio_status(&e->t.dev));
  return len >= 0;
}

void test_virtio_evil(struct guest* g) {
  struct evil e = {.g = g};
  e.accepted_list = (struct strbuf){e.accepted, sizeof(e.accepted), 0};
  e.accepted[0] = 0;
  uint32_t id = device_id_option(g);
  if (!id) {
    report_fail(IGN_TEST_VIRTIO_EVIL, "unsupported-device (rng or blk)");
    return;
  }
  if (!virtio_test_open(&e.t, g, IGN_TEST_VIRTIO_EVIL, "evil", id, 0)) {
    virtio_test_close(&e.t);
    return;
  }
  e.case_mark = pool_mark();
  run_case(&e, "beyond_ram", true, beyond_ram);
  run_case(&e, "mmio_gap", true, mmio_gap);
  run_case(&e, "addr_wrap", true, addr_wrap);
  run_case(&e, "looped_chain", true, looped_chain);
  run_case(&e, "next_out_of_range", true, next_out_of_range);
  run_case(&e, "head_out_of_range", true, head_out_of_range);
  run_case(&e, "avail_idx_jump", true, avail_idx_jump);
  run_case(&e, "len_wrap", true, len_wrap);
  run_case(&e, "indirect_not_negotiated", false, indirect_not_negotiated);
  run_case(&e, "resize_live", false, resize_live);
  bool ok = recovered(&e);
  virtio_test_close(&e.t);
  if (e.accepted_list.len) {
    report_fail(IGN_TEST_VIRTIO_EVIL, "accepted=%s recovered=%d", e.accepted, ok);
  } else if (!ok) {
    report_fail(IGN_TEST_VIRTIO_EVIL, "not-recovered");
  } else {
    report_pass(IGN_TEST_VIRTIO_EVIL, "device=%s cases=10", virtio_device_name(id));
  }
}
