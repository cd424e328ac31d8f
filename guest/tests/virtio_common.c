/* See virtio_common.h. */
#include "virtio_common.h"

#include "pool.h"
#include "report.h"

bool virtio_test_open(struct virtio_test* t, struct guest* g, const char* name, const char* key,
                      uint32_t device_id, uint64_t wanted) {
  *t = (struct virtio_test){.name = name, .key = key};
  pool_init(&g->boot);
  t->pool_mark = pool_mark();
  if (!pool_free_bytes()) {
    report_fail(name, "no-memory-pool");
    return false;
  }
  if (!virtio_find(g, device_id, &t->dev)) {
    report_fail(name, "no-device id=%u", device_id);
    return false;
  }
  struct virtio_dev* d = &t->dev;
  report_info("%s.device=0x%lx gsi=%u version=%u vendor=0x%x found-by=%s", key, d->base, d->gsi,
              d->version, d->vendor_id, d->found_by);
  const char* err = virtio_init(d, wanted);
  report_info("%s.features=0x%lx offered=0x%lx", key, d->features, d->device_features);
  if (err) {
    report_fail(name, "init %s status=0x%x", err, virtio_status(d));
    return false;
  }
  return true;
}

bool virtio_test_queue(struct virtio_test* t, struct virtq* q, uint16_t index, uint16_t want) {
  const char* err = virtq_setup(q, &t->dev, index, want);
  if (err) {
    report_fail(t->name, "queue%u %s", index, err);
    virtio_set_status(&t->dev, virtio_status(&t->dev) | VIRTIO_STATUS_FAILED);
    return false;
  }
  return true;
}

void virtio_test_close(struct virtio_test* t) {
  if (t->dev.base) virtio_reset(&t->dev);
  pool_release(t->pool_mark);
}
