/* virtio-blk: reads the pattern the host wrote (see IGN_BLK_* in ign_protocol.h), rewrites a
 * range of sectors and reads it back (completion by interrupt), flushes, asks for the device
 * ID, and checks that a request straddling the end of the disk fails with an error status
 * instead of hanging. On a read-only device (VIRTIO_BLK_F_RO) a write must fail with IOERR. */
#include "irq.h"
#include "pool.h"
#include "report.h"
#include "string.h"
#include "tests.h"
#include "virtio_common.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9

#define BLK_CFG_CAPACITY 0
#define BLK_CFG_SIZE_MAX 8
#define BLK_CFG_SEG_MAX 12
#define BLK_CFG_BLK_SIZE 20

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define STATUS_NONE 0xff /* what the status byte holds until the device writes it */

#define SECTOR IGN_BLK_SECTOR_SIZE
#define TIMEOUT_US 5000000

struct blk_req_header {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

struct blk {
  struct virtio_test t;
  struct virtq q;
  struct blk_req_header* hdr;
  uint8_t* status;
  uint8_t* data; /* IGN_BLK_CHECK_SECTORS sectors */
  uint64_t irqs;
};

/* One request: header, `nseg` data segments splitting `len` bytes of data, status byte.
 * Returns the status byte (STATUS_NONE if the device never answered). */
static uint8_t request(struct blk* b, uint32_t type, uint64_t sector, void* data, uint32_t len,
                       int nseg, bool use_irq) {
  struct virtq_buf bufs[2 + 4];
  int n = 0;
  *b->hdr = (struct blk_req_header){type, 0, sector};
  *b->status = STATUS_NONE;
  bufs[n++] = (struct virtq_buf){(uint64_t)b->hdr, sizeof(*b->hdr), false};
  bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
  uint32_t seg = nseg > 0 ? len / nseg : 0;
  for (int i = 0; i < nseg && i < 4; i++) {
    uint32_t this_len = i == nseg - 1 ? len - seg * i : seg;
    bufs[n++] = (struct virtq_buf){(uint64_t)data + seg * i, this_len, device_writes};
  }
  bufs[n++] = (struct virtq_buf){(uint64_t)b->status, 1, true};
  uint64_t irqs = 0;
  int64_t r = use_irq ? virtq_transfer_irq(&b->q, bufs, n, TIMEOUT_US, &irqs)
                      : virtq_transfer(&b->q, bufs, n, TIMEOUT_US);
  b->irqs += irqs;
  return r < 0 ? STATUS_NONE : *(volatile uint8_t*)b->status;
}

static uint64_t word_at(const uint8_t* p) {
  uint64_t v;
  memcpy(&v, p, sizeof(v));
  return v;
}

static void fill_sectors(uint8_t* p, uint64_t first, uint64_t count, uint64_t tag) {
  for (uint64_t s = 0; s < count; s++) {
    for (uint32_t w = 0; w < SECTOR / 8; w++) {
      uint64_t v = tag | (first + s);
      memcpy(p + s * SECTOR + w * 8, &v, sizeof(v));
    }
  }
}

/* The first sector in [first, first+count) whose content is not tag|s; -1 if all match. */
static int64_t check_sectors(const uint8_t* p, uint64_t first, uint64_t count, uint64_t tag) {
  for (uint64_t s = 0; s < count; s++) {
    for (uint32_t w = 0; w < SECTOR / 8; w++) {
      if (word_at(p + s * SECTOR + w * 8) != (tag | (first + s))) return (int64_t)(first + s);
    }
  }
  return -1;
}

static const char* status_name(uint8_t s) {
  switch (s) {
    case VIRTIO_BLK_S_OK:
      return "ok";
    case VIRTIO_BLK_S_IOERR:
      return "ioerr";
    case VIRTIO_BLK_S_UNSUPP:
      return "unsupp";
    case STATUS_NONE:
      return "no-response";
  }
  return "other";
}

/* Reports the device ID string (printable characters up to the first NUL). */
static void report_id(struct blk* b) {
  uint8_t* id = b->data;
  memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
  uint8_t st = request(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, 1, false);
  if (st != VIRTIO_BLK_S_OK) {
    report_info("blk.id.status=%s", status_name(st));
    return;
  }
  for (int i = 0; i < VIRTIO_BLK_ID_BYTES; i++) {
    if (id[i] && (id[i] < 0x20 || id[i] > 0x7e)) id[i] = '?';
  }
  report_info("blk.id=%s", (const char*)id);
}

static bool run(struct blk* b) {
  const struct virtio_dev* d = &b->t.dev;
  const char* name = IGN_TEST_VIRTIO_BLK;
  uint64_t capacity = virtio_config_read64(d, BLK_CFG_CAPACITY);
  bool ro = virtio_has(d, VIRTIO_BLK_F_RO);
  report_info("blk.capacity=%lu", capacity);
  if (virtio_has(d, VIRTIO_BLK_F_BLK_SIZE))
    report_info("blk.blk_size=%u", virtio_config_read32(d, BLK_CFG_BLK_SIZE));
  if (virtio_has(d, VIRTIO_BLK_F_SEG_MAX))
    report_info("blk.seg_max=%u", virtio_config_read32(d, BLK_CFG_SEG_MAX));
  if (virtio_has(d, VIRTIO_BLK_F_SIZE_MAX))
    report_info("blk.size_max=%u", virtio_config_read32(d, BLK_CFG_SIZE_MAX));
  report_info("blk.ro=%d", ro);

  uint64_t check = capacity < IGN_BLK_CHECK_SECTORS ? capacity : IGN_BLK_CHECK_SECTORS;
  uint64_t wfirst = IGN_BLK_WRITE_FIRST, wcount = IGN_BLK_WRITE_COUNT;
  if (check < wfirst + wcount) {
    report_fail(name, "disk-too-small capacity=%lu", capacity);
    return false;
  }
  /* Read: all checked sectors in one request, the data split over three descriptors. */
  uint8_t st = request(b, VIRTIO_BLK_T_IN, 0, b->data, (uint32_t)(check * SECTOR), 3, false);
  if (st != VIRTIO_BLK_S_OK) {
    report_fail(name, "read status=%s", status_name(st));
    return false;
  }
  int64_t bad = check_sectors(b->data, 0, check, 0);
  report_info("blk.read=%lu", check);
  if (bad >= 0) {
    report_fail(name, "pattern-mismatch sector=%ld word0=0x%lx", bad,
                word_at(b->data + bad * SECTOR));
    return false;
  }

  /* Write (two data descriptors), or on a read-only disk expect the write to fail. */
  fill_sectors(b->data, wfirst, wcount, IGN_BLK_WRITE_TAG);
  st = request(b, VIRTIO_BLK_T_OUT, wfirst, b->data, (uint32_t)(wcount * SECTOR), 2, false);
  if (ro) {
    report_info("blk.ro_write=%s", status_name(st));
    if (st != VIRTIO_BLK_S_IOERR) {
      report_fail(name, "ro-write status=%s", status_name(st));
      return false;
    }
  } else if (st != VIRTIO_BLK_S_OK) {
    report_fail(name, "write status=%s", status_name(st));
    return false;
  } else {
    report_info("blk.written=%lu+%lu", wfirst, wcount);
  }

  /* Read it back, completed by the interrupt. */
  memset(b->data, 0, wcount * SECTOR);
  st = request(b, VIRTIO_BLK_T_IN, wfirst, b->data, (uint32_t)(wcount * SECTOR), 1, true);
  report_info("blk.irqs=%lu", b->irqs);
  if (st != VIRTIO_BLK_S_OK) {
    report_fail(name, "readback status=%s irqs=%lu", status_name(st), b->irqs);
    return false;
  }
  bad = check_sectors(b->data, wfirst, wcount, ro ? 0 : IGN_BLK_WRITE_TAG);
  if (bad >= 0) {
    report_fail(name, "readback-mismatch sector=%ld", bad);
    return false;
  }

  if (virtio_has(d, VIRTIO_BLK_F_FLUSH)) {
    st = request(b, VIRTIO_BLK_T_FLUSH, 0, 0, 0, 0, false);
    report_info("blk.flush=%s", status_name(st));
    if (st != VIRTIO_BLK_S_OK) {
      report_fail(name, "flush status=%s", status_name(st));
      return false;
    }
  } else {
    report_info("blk.flush=not-offered");
  }
  report_id(b);

  /* Two sectors from the last one: past the end, so the device must refuse it. */
  st = request(b, VIRTIO_BLK_T_IN, capacity - 1, b->data, 2 * SECTOR, 1, false);
  report_info("blk.straddle=%s", status_name(st));
  if (st == VIRTIO_BLK_S_OK || st == STATUS_NONE) {
    report_fail(name, "straddle status=%s", status_name(st));
    return false;
  }
  report_pass(name, "capacity=%lu read=%lu %s=%lu irqs=%lu", capacity, check, ro ? "ro" : "written",
              ro ? 1ul : wcount, b->irqs);
  return true;
}

void test_virtio_blk(struct guest* g) {
  struct blk b = {0};
  uint64_t wanted = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
                    VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
                    VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_F_RING_EVENT_IDX);
  if (!virtio_test_open(&b.t, g, IGN_TEST_VIRTIO_BLK, "blk", VIRTIO_ID_BLOCK, wanted) ||
      !virtio_test_queue(&b.t, &b.q, 0, 64)) {
    virtio_test_close(&b.t);
    return;
  }
  b.hdr = pool_alloc(sizeof(*b.hdr), 16);
  b.status = pool_alloc(1, 1);
  b.data = pool_alloc(IGN_BLK_CHECK_SECTORS * SECTOR, PAGE_SIZE);
  virtio_driver_ok(&b.t.dev);
  bool routed = b.hdr && b.status && b.data && virtio_irq_route(g, &b.t.dev);
  if (!routed) {
    report_fail(IGN_TEST_VIRTIO_BLK, "setup no-memory-or-no-ioapic gsi=%u", b.t.dev.gsi);
  } else {
    run(&b);
  }
  virtio_irq_mask(g, &b.t.dev);
  virtio_test_close(&b.t);
}
