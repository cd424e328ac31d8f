/* bench-blk: virtio-blk throughput as the guest sees it, polled, in ring 3. Works on the
 * first ign.bench.mib= MiB of the disk (default: all of it, at most 64 MiB), in four phases,
 * each timed with the TSC and reported as bench.blk.<phase>=ops=<n> bytes=<b> ns=<t> qd=<q>:
 *   seqwrite  ign.bench.seq= MiB (default 256, at least the region) of 1 MiB writes from
 *             sector 0 up, wrapping around the region; every 512-byte sector s gets
 *             IGN_BLK_WRITE_TAG | s in its first word,
 *   seqread   as many 1 MiB reads, the same way, each checked,
 *   randread  ign.bench.ops= (default 8192) 4 KiB reads at random 4 KiB offsets, checked,
 *   randwrite as many 4 KiB writes, with the same pattern (so the disk stays checkable).
 * ign.bench.qd= (default 1) requests are kept in flight. Interrupts are suppressed (the
 * guest polls the used ring), so the numbers are the device's request path and nothing
 * else. Each phase starts with one untimed request per slot so first-touch costs stay out.
 * Any request that fails, times out or reads back the wrong data fails the test. */
#include "bench_common.h"
#include "cpu.h"
#include "pool.h"
#include "print.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "time.h"
#include "virtio_common.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_FLUSH 9
#define BLK_CFG_CAPACITY 0
#define BLK_CFG_SIZE_MAX 8
#define BLK_CFG_SEG_MAX 12
#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_S_OK 0
#define STATUS_NONE 0xff

#define SECTOR IGN_BLK_SECTOR_SIZE
#define SMALL 4096u
#define LARGE (1u << 20)
#define MAX_QD 32
#define MAX_SEGS 16 /* data descriptors per request, when the device limits a segment */
#define QUEUE_SIZE 256
#define PHASE_TIMEOUT_US 60000000
#define DEFAULT_OPS 8192
#define DEFAULT_MIB 64
#define DEFAULT_SEQ_MIB 256

struct blk_req_header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

struct slot {
  struct blk_req_header hdr;
  uint8_t status;
  bool busy;
  uint32_t len;
  uint64_t sector;
  uint8_t* data; /* LARGE bytes */
};

struct bench {
  struct virtio_test t;
  struct virtq q;
  struct slot* slots; /* qd */
  int8_t slot_of_head[QUEUE_SIZE];
  uint32_t qd;
  uint32_t seg_len; /* the largest data descriptor the device takes */
  uint64_t capacity;
  uint64_t region; /* sectors the benchmark uses, from 0 */
  uint64_t ops;    /* 4 KiB requests per random phase */
  uint64_t rng;
  const char* error; /* the first failure, for IGN-FAIL */
  char error_buf[96];
};

static uint64_t xorshift(uint64_t* s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* First word of each sector = tag | sector; the rest of the data is left as it was (zero from
 * the pool), since only the first words are ever checked. */
static void fill(uint8_t* p, uint64_t sector, uint32_t len) {
  for (uint32_t off = 0; off < len; off += SECTOR) {
    uint64_t v = IGN_BLK_WRITE_TAG | (sector + off / SECTOR);
    memcpy(p + off, &v, sizeof(v));
  }
}

/* The first sector whose first word is wrong, or -1. */
static int64_t check(const uint8_t* p, uint64_t sector, uint32_t len) {
  for (uint32_t off = 0; off < len; off += SECTOR) {
    uint64_t v;
    memcpy(&v, p + off, sizeof(v));
    if (v != (IGN_BLK_WRITE_TAG | (sector + off / SECTOR))) return (int64_t)(sector + off / SECTOR);
  }
  return -1;
}

static void fail(struct bench* b, const char* phase, const char* what, uint64_t sector,
                 uint32_t extra) {
  if (b->error) return;
  struct strbuf s = {b->error_buf, sizeof(b->error_buf), 0};
  sbprintf(&s, "%s %s sector=%lu value=%u", phase, what, sector, extra);
  b->error = b->error_buf;
}

static bool submit(struct bench* b, int i, uint32_t type, uint64_t sector, uint32_t len) {
  struct slot* s = &b->slots[i];
  struct virtq_buf bufs[2 + MAX_SEGS];
  int n = 0;
  s->hdr = (struct blk_req_header){type, 0, sector};
  s->status = STATUS_NONE;
  s->len = len;
  s->sector = sector;
  if (type == VIRTIO_BLK_T_OUT) fill(s->data, sector, len);
  bufs[n++] = (struct virtq_buf){(uint64_t)&s->hdr, sizeof(s->hdr), false};
  for (uint32_t off = 0; off < len; off += b->seg_len) {
    uint32_t l = len - off < b->seg_len ? len - off : b->seg_len;
    bufs[n++] = (struct virtq_buf){(uint64_t)s->data + off, l, type == VIRTIO_BLK_T_IN};
  }
  bufs[n++] = (struct virtq_buf){(uint64_t)&s->status, 1, true};
  int head = virtq_add(&b->q, bufs, n);
  if (head < 0) return false;
  b->slot_of_head[head] = (int8_t)i;
  s->busy = true;
  return true;
}

/* Reclaims one finished request if there is one: -1 none, 0 failed, 1 done. */
static int complete_one(struct bench* b, const char* phase, uint32_t type) {
  uint32_t len;
  int head = virtq_pop(&b->q, &len);
  if (head == -1) return -1;
  bench_quiet(&b->q);
  if (head < 0 || b->slot_of_head[head] < 0) {
    fail(b, phase, "bad-used-head", 0, (uint32_t)head);
    return 0;
  }
  struct slot* s = &b->slots[b->slot_of_head[head]];
  b->slot_of_head[head] = -1;
  s->busy = false;
  uint8_t st = *(volatile uint8_t*)&s->status;
  if (st != VIRTIO_BLK_S_OK) {
    fail(b, phase, "status", s->sector, st);
    return 0;
  }
  if (type == VIRTIO_BLK_T_IN) {
    int64_t bad = check(s->data, s->sector, s->len);
    if (bad >= 0) {
      fail(b, phase, "data-mismatch", (uint64_t)bad, 0);
      return 0;
    }
  }
  return 1;
}

static uint64_t next_sector(struct bench* b, bool random, uint64_t i, uint32_t len) {
  uint64_t per = len / SECTOR;
  if (random) return xorshift(&b->rng) % (b->region / per) * per;
  return i * per % b->region;
}

/* `ops` requests of `len` bytes, up to qd in flight; returns the TSC ticks they took, or 0
 * after a failure (b->error says which). */
static uint64_t run_ops(struct bench* b, const char* phase, uint32_t type, bool random,
                        uint64_t ops, uint32_t len) {
  uint64_t deadline = deadline_after_us(PHASE_TIMEOUT_US);
  uint64_t submitted = 0, done = 0;
  uint64_t start = rdtsc();
  while (done < ops) {
    bool added = false;
    for (uint32_t i = 0; i < b->qd && submitted < ops; i++) {
      if (b->slots[i].busy) continue;
      if (!submit(b, (int)i, type, next_sector(b, random, submitted, len), len)) break;
      submitted++;
      added = true;
    }
    if (added) virtq_kick(&b->q);
    int r;
    while ((r = complete_one(b, phase, type)) == 1) done++;
    if (r == 0) return 0;
    if (deadline_passed(deadline)) {
      fail(b, phase, "timeout", done, (uint32_t)submitted);
      return 0;
    }
    cpu_relax();
  }
  uint64_t ticks = rdtsc() - start;
  return ticks ? ticks : 1;
}

static bool phase(struct bench* b, const char* name, uint32_t type, bool random, uint64_t ops,
                  uint32_t len) {
  uint64_t warm = b->qd < ops ? b->qd : ops;
  if (!run_ops(b, name, type, random, warm, len)) return false;
  uint64_t ticks = run_ops(b, name, type, random, ops, len);
  if (!ticks) return false;
  report_info("bench.blk.%s=ops=%lu bytes=%lu ns=%lu qd=%u", name, ops, ops * len, bench_ns(ticks),
              b->qd);
  return true;
}

static bool run(struct bench* b, struct guest* g) {
  const struct virtio_dev* d = &b->t.dev;
  b->capacity = virtio_config_read64(d, BLK_CFG_CAPACITY);
  b->seg_len = LARGE;
  if (virtio_has(d, VIRTIO_BLK_F_SIZE_MAX)) {
    uint32_t size_max = virtio_config_read32(d, BLK_CFG_SIZE_MAX);
    if (size_max && size_max < b->seg_len) b->seg_len = size_max & ~(SECTOR - 1);
  }
  uint32_t segs = (LARGE + b->seg_len - 1) / (b->seg_len ? b->seg_len : 1);
  uint32_t seg_max =
      virtio_has(d, VIRTIO_BLK_F_SEG_MAX) ? virtio_config_read32(d, BLK_CFG_SEG_MAX) : MAX_SEGS;
  if (b->seg_len < SMALL || segs > MAX_SEGS || (seg_max && segs > seg_max)) {
    fail(b, "setup", "segments-too-small", 0, b->seg_len);
    return false;
  }
  uint64_t mib = bench_option(g, IGN_OPT_BENCH_MIB, DEFAULT_MIB, 1, 1 << 20);
  uint64_t region = mib * (LARGE / SECTOR);
  b->region = region < b->capacity ? region : b->capacity / (LARGE / SECTOR) * (LARGE / SECTOR);
  if (b->region == 0) {
    fail(b, "setup", "disk-too-small", b->capacity, 0);
    return false;
  }
  b->ops = bench_option(g, IGN_OPT_BENCH_OPS, DEFAULT_OPS, 1, 1 << 24);
  uint64_t region_mib = b->region / (LARGE / SECTOR);
  uint64_t large_ops = bench_option(g, IGN_OPT_BENCH_SEQ, DEFAULT_SEQ_MIB, region_mib, 1 << 24);
  report_info("bench.blk.setup=capacity=%lu region_mib=%lu qd=%u seg_len=%u flush=%d", b->capacity,
              b->region * SECTOR >> 20, b->qd, b->seg_len, virtio_has(d, VIRTIO_BLK_F_FLUSH));
  b->rng = 0x9e3779b97f4a7c15ull;
  return phase(b, "seqwrite", VIRTIO_BLK_T_OUT, false, large_ops, LARGE) &&
         phase(b, "seqread", VIRTIO_BLK_T_IN, false, large_ops, LARGE) &&
         phase(b, "randread", VIRTIO_BLK_T_IN, true, b->ops, SMALL) &&
         phase(b, "randwrite", VIRTIO_BLK_T_OUT, true, b->ops, SMALL);
}

void test_bench_blk(struct guest* g) {
  const char* name = IGN_TEST_BENCH_BLK;
  struct virtio_test t;
  struct bench* b = 0;
  /* FLUSH as Linux takes it: a driver without it gets a write-through disk from QEMU (a
   * host fdatasync after every write). The benchmark itself never flushes. */
  uint64_t wanted = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
  if (!virtio_test_open(&t, g, name, "blk", VIRTIO_ID_BLOCK, wanted)) goto out;
  b = pool_alloc(sizeof(*b), 64);
  if (!b) {
    report_fail(name, "out-of-memory");
    goto out;
  }
  b->t = t;
  b->qd = (uint32_t)bench_option(g, IGN_OPT_BENCH_QD, 1, 1, MAX_QD);
  if (!virtio_test_queue(&b->t, &b->q, 0, QUEUE_SIZE)) goto out;
  b->slots = pool_alloc(b->qd * sizeof(struct slot), 64);
  for (uint32_t i = 0; b->slots && i < b->qd; i++) {
    b->slots[i].data = pool_alloc(LARGE, PAGE_SIZE);
    if (!b->slots[i].data) b->slots = 0;
  }
  if (!b->slots) {
    report_fail(name, "out-of-memory qd=%u", b->qd);
    goto out;
  }
  for (int i = 0; i < QUEUE_SIZE; i++) b->slot_of_head[i] = -1;
  virtio_driver_ok(&b->t.dev);
  bench_quiet(&b->q);
  bench_report_clock("bench.blk");
  if (run(b, g)) {
    report_pass(name, "qd=%u region_mib=%lu ops=%lu", b->qd, b->region * SECTOR >> 20, b->ops);
  } else {
    report_fail(name, "%s status=0x%x", b->error ? b->error : "unknown", virtio_status(&b->t.dev));
  }
out:
  virtio_test_close(b ? &b->t : &t);
}
