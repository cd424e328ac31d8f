/* virtio-devices: lists every virtio-mmio device the driver finds (command line first, else
 * the ignition and QEMU windows). Passes if there is at least one. */
#include "mmio.h"
#include "report.h"
#include "tests.h"

void test_virtio_devices(struct guest* g) {
  struct virtio_dev devs[VIRTIO_MAX_DEVICES];
  int n = virtio_discover(g, devs, VIRTIO_MAX_DEVICES);
  for (int i = 0; i < n; i++) {
    const struct virtio_dev* d = &devs[i];
    report_info("virtio.device=%s id=%u base=0x%lx size=0x%lx gsi=%u version=%u found-by=%s",
                virtio_device_name(d->device_id), d->device_id, d->base, d->size, d->gsi,
                d->version, d->found_by);
  }
  report_info("virtio.count=%d", n);
  if (n > 0) {
    report_pass(IGN_TEST_VIRTIO_DEVICES, "count=%d", n);
  } else {
    report_fail(IGN_TEST_VIRTIO_DEVICES, "none");
  }
}
