/* The guest's tests. Each reports IGN-PASS or IGN-FAIL (and any IGN-INFO) for its own name.
 * Manual tests are left out of the default set (see registry.c). */
#pragma once

#include <stdbool.h>

#include "guest.h"

struct guest_test {
  const char* name;
  bool manual;
  void (*run)(struct guest* g);
};

extern const struct guest_test guest_tests[];
extern const int guest_test_count;

void test_boot(struct guest* g);
void test_cmdline(struct guest* g);
void test_e820(struct guest* g);
void test_initrd(struct guest* g);
void test_acpi(struct guest* g);
void test_smp(struct guest* g);
void test_timer(struct guest* g);
void test_serial_irq(struct guest* g);
void test_kvmclock(struct guest* g);
void test_boottime(struct guest* g);
void test_vmgenid(struct guest* g);
void test_echo(struct guest* g);
void test_fault(struct guest* g);
void test_reset(struct guest* g);
void test_virtio_devices(struct guest* g);
void test_virtio_blk(struct guest* g);
void test_virtio_net(struct guest* g);
void test_virtio_vsock(struct guest* g);
void test_virtio_rng(struct guest* g);
void test_virtio_pmem(struct guest* g);
void test_virtio_balloon(struct guest* g);
void test_virtio_evil(struct guest* g);
void test_bench_blk(struct guest* g);
void test_bench_net(struct guest* g);
void test_bench_vsock(struct guest* g);
