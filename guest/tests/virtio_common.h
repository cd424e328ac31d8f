/* What every virtio device test does first and last: find the device, report where it is,
 * initialise it with the features the test wants, and at the end reset it (so it stops using
 * guest memory) and give its memory back to the pool. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "guest.h"
#include "mmio.h"
#include "virtq.h"

struct virtio_test {
  const char* name; /* the test's name, for IGN-PASS/IGN-FAIL */
  const char* key;  /* the IGN-INFO prefix, e.g. "blk" */
  struct virtio_dev dev;
  uint64_t pool_mark;
};

/* Finds a device of `device_id`, reports <key>.device=..., runs virtio_init with `wanted` and
 * reports <key>.features=. On failure reports IGN-FAIL and returns false. */
bool virtio_test_open(struct virtio_test* t, struct guest* g, const char* name, const char* key,
                      uint32_t device_id, uint64_t wanted);
/* Sets up queue `index` (want entries at most), failing the test on error. */
bool virtio_test_queue(struct virtio_test* t, struct virtq* q, uint16_t index, uint16_t want);
/* Resets the device and releases the test's pool memory. */
void virtio_test_close(struct virtio_test* t);
