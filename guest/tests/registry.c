/* Every test the guest knows, in the order the default run uses. */
#include "ign_protocol.h"
#include "tests.h"

const struct guest_test guest_tests[] = {
    {IGN_TEST_BOOT, false, test_boot},
    {IGN_TEST_CMDLINE, false, test_cmdline},
    {IGN_TEST_E820, false, test_e820},
    {IGN_TEST_INITRD, false, test_initrd},
    {IGN_TEST_ACPI, false, test_acpi},
    {IGN_TEST_SMP, false, test_smp},
    {IGN_TEST_TIMER, false, test_timer},
    {IGN_TEST_SERIAL_IRQ, false, test_serial_irq},
    {IGN_TEST_KVMCLOCK, false, test_kvmclock},
    {IGN_TEST_BOOTTIME, false, test_boottime},
    {IGN_TEST_VMGENID, false, test_vmgenid},
    {IGN_TEST_ECHO, true, test_echo},
    {IGN_TEST_FAULT, true, test_fault},
    {IGN_TEST_RESET, true, test_reset}, /* needs the VMM's reset port (--reset-port) */
    /* The virtio tests need devices the host attaches (see README.md). */
    {IGN_TEST_VIRTIO_DEVICES, true, test_virtio_devices},
    {IGN_TEST_VIRTIO_BLK, true, test_virtio_blk},
    {IGN_TEST_VIRTIO_NET, true, test_virtio_net},
    {IGN_TEST_VIRTIO_VSOCK, true, test_virtio_vsock},
    {IGN_TEST_VIRTIO_RNG, true, test_virtio_rng},
    {IGN_TEST_VIRTIO_BALLOON, true, test_virtio_balloon},
    {IGN_TEST_VIRTIO_PMEM, true, test_virtio_pmem},
    {IGN_TEST_VIRTIO_EVIL, true, test_virtio_evil},
    /* Device benchmarks (bench/io.sh): the same devices, timed. */
    {IGN_TEST_BENCH_BLK, true, test_bench_blk},
    {IGN_TEST_BENCH_NET, true, test_bench_net},
    {IGN_TEST_BENCH_VSOCK, true, test_bench_vsock},
};
const int guest_test_count = sizeof(guest_tests) / sizeof(guest_tests[0]);
