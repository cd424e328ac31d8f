/* The test guest's report protocol: the lines it prints on COM1 and the command-line options
 * it reads. Plain C so the guest and the host-side parser (tests/support/guest_report.cpp)
 * include the same definitions.
 *
 *   IGN-BEGIN entry=<entry>
 *   IGN-INFO <key>=<value>          (one key per line; the value runs to the end of the line
 *                                    and may contain spaces; a bare <key> is a flag, e.g.
 *                                    "IGN-INFO echo.ready")
 *   IGN-PASS <test> [detail]
 *   IGN-FAIL <test> <reason>
 *   IGN-END pass=<n> fail=<m>
 *
 * Details and reasons are space-separated key=value words where that makes sense
 * ("skipped=no-kvmclock", "vector=13 rip=0x100234 err=0x0"). After IGN-END the guest leaves
 * the way ign.exit says. An exception anywhere prints IGN-FAIL exception ... and IGN-END. */
#ifndef IGN_PROTOCOL_H
#define IGN_PROTOCOL_H

#define IGN_LINE_BEGIN "IGN-BEGIN"
#define IGN_LINE_INFO "IGN-INFO"
#define IGN_LINE_PASS "IGN-PASS"
#define IGN_LINE_FAIL "IGN-FAIL"
#define IGN_LINE_END "IGN-END"

/* entry=<...>: which boot entry point the guest came through. */
#define IGN_ENTRY_PVH "pvh"             /* Xen PVH, 32-bit, EBX = hvm_start_info */
#define IGN_ENTRY_ELF64 "elf64"         /* ELF e_entry, 64-bit, RSI = boot_params */
#define IGN_ENTRY_BZIMAGE64 "bzimage64" /* bzImage payload + 0x200, 64-bit, RSI = boot_params */
#define IGN_ENTRY_BZIMAGE32 "bzimage32" /* bzImage payload + 0, 32-bit, ESI = boot_params */
#define IGN_ENTRY_BZIMAGE16 "bzimage16" /* bzImage real-mode setup code (firmware boot) */

/* Kernel command-line options. */
#define IGN_OPT_TESTS "ign.tests=" /* comma-separated; default: every test not marked manual */
#define IGN_OPT_EXIT "ign.exit="   /* reboot (default) | shutdown | triple-fault | hang */

/* Options of the virtio tests. */
#define IGN_OPT_IP "ign.ip="     /* virtio-net: the guest's address, e.g. 10.0.2.15/24 */
#define IGN_OPT_PEER "ign.peer=" /* virtio-net: the host's address, runs a UDP echo on port 7 */
#define IGN_OPT_VSOCK_PORT "ign.vsock.port="     /* virtio-vsock: host port to connect to */
#define IGN_OPT_VSOCK_LISTEN "ign.vsock.listen=" /* virtio-vsock: guest port to accept on */
#define IGN_OPT_VSOCK_BYTES "ign.vsock.bytes="   /* virtio-vsock: how much to send */
#define IGN_OPT_EVIL_DEVICE "ign.evil.device="   /* virtio-evil: rng (default), blk, net, ... */

/* Options of the device benchmarks (bench-*; see tests/bench_*.c and bench/io.sh). */
#define IGN_OPT_BENCH_QD "ign.bench.qd="       /* bench-blk: requests in flight (default 1) */
#define IGN_OPT_BENCH_OPS "ign.bench.ops="     /* bench-blk: 4 KiB random requests per phase */
#define IGN_OPT_BENCH_MIB "ign.bench.mib="     /* bench-blk: MiB of the disk used, from 0 */
#define IGN_OPT_BENCH_SEQ "ign.bench.seq="     /* bench-blk: MiB per sequential phase */
#define IGN_OPT_BENCH_PINGS "ign.bench.pings=" /* bench-net: UDP round trips timed */
#define IGN_OPT_BENCH_PKTS "ign.bench.pkts="   /* bench-net: datagrams in the throughput run */
/* bench-net: UDP payload bytes per datagram; bench-vsock: data bytes per packet. */
#define IGN_OPT_BENCH_SIZE "ign.bench.size="

#define IGN_EXIT_REBOOT "reboot"
#define IGN_EXIT_SHUTDOWN "shutdown"
#define IGN_EXIT_TRIPLE_FAULT "triple-fault"
#define IGN_EXIT_HANG "hang"

/* Test names. The default set is every test except the manual ones. */
#define IGN_TEST_BOOT "boot"
#define IGN_TEST_CMDLINE "cmdline"
#define IGN_TEST_E820 "e820"
#define IGN_TEST_INITRD "initrd"
#define IGN_TEST_ACPI "acpi"
#define IGN_TEST_SMP "smp"
#define IGN_TEST_TIMER "timer"
#define IGN_TEST_SERIAL_IRQ "serial-irq"
#define IGN_TEST_KVMCLOCK "kvmclock"
#define IGN_TEST_BOOTTIME "boottime"
/* vmgenid: passes as skipped without the device (QEMU). */
#define IGN_TEST_VMGENID "vmgenid"
#define IGN_TEST_ECHO "echo"   /* manual: needs the host to type a line */
#define IGN_TEST_FAULT "fault" /* manual: raises #UD in ring 3 on purpose */
#define IGN_TEST_RESET "reset" /* manual: checkpoint/reset through the VMM's reset port */
/* virtio-mmio device tests (manual: the host must attach the device; see README.md). */
#define IGN_TEST_VIRTIO_DEVICES "virtio-devices" /* lists what virtio_discover finds */
#define IGN_TEST_VIRTIO_BLK "virtio-blk"
#define IGN_TEST_VIRTIO_NET "virtio-net"
#define IGN_TEST_VIRTIO_VSOCK "virtio-vsock"
#define IGN_TEST_VIRTIO_RNG "virtio-rng"
#define IGN_TEST_VIRTIO_PMEM "virtio-pmem"
#define IGN_TEST_VIRTIO_BALLOON "virtio-balloon"
#define IGN_TEST_VIRTIO_EVIL "virtio-evil" /* a misbehaving driver; see tests/virtio_evil.c */
/* Device benchmarks (manual): polled, all in ring 3; results in IGN-INFO bench.* lines. */
#define IGN_TEST_BENCH_BLK "bench-blk"
#define IGN_TEST_BENCH_NET "bench-net"
#define IGN_TEST_BENCH_VSOCK "bench-vsock"
/* Not a test: the name IGN-FAIL uses for an unexpected CPU exception. */
#define IGN_FAIL_EXCEPTION "exception"

/* Info keys the host tests look for. */
#define IGN_INFO_ECHO_READY "echo.ready" /* printed when the guest waits for a line */
/* virtio-balloon: the guest waits for the host to set a target (num_pages > 0) ... */
#define IGN_INFO_BALLOON_READY "balloon.ready"
/* ... has inflated to it and now waits for the host to lower it again (deflate). */
#define IGN_INFO_BALLOON_INFLATED "balloon.inflated"
/* ... or, with ign.balloon.report=1, has reported a chunk of its memory as free (free page
 * reporting): balloon.reported=<bytes> zeroed=<yes|no>, zeroed=yes when the host discarded it. */
#define IGN_INFO_BALLOON_REPORTED "balloon.reported"
#define IGN_OPT_BALLOON_REPORT "ign.balloon.report="
/* virtio-vsock: the guest now accepts a host-initiated connection on its listen port. */
#define IGN_INFO_VSOCK_LISTENING "vsock.listening"
/* vmgenid: the generation ID as 32 hex digits (memory order), once per run of the test; a
 * second run in the same boot also reports vmgenid.changed=yes|no (since the first). */
#define IGN_INFO_VMGENID_ID "vmgenid.id"
#define IGN_INFO_VMGENID_CHANGED "vmgenid.changed"

/* virtio-blk: the disk the host prepares holds, in every 8-byte word of 512-byte sector s, the
 * value s (little-endian u64). The guest checks sectors [0, min(IGN_BLK_CHECK_SECTORS,
 * capacity)) and rewrites IGN_BLK_WRITE_COUNT sectors from IGN_BLK_WRITE_FIRST with
 * IGN_BLK_WRITE_TAG | s in every word; the host checks the file after the run. */
#define IGN_BLK_SECTOR_SIZE 512
#define IGN_BLK_CHECK_SECTORS 64
#define IGN_BLK_WRITE_FIRST 32
#define IGN_BLK_WRITE_COUNT 16
#define IGN_BLK_WRITE_TAG 0x5752495445000000ull /* "\0\0\0ETIRW" as a little-endian u64 */
/* virtio-pmem: the file the host prepares holds, in its 8-byte word i, IGN_PMEM_TAG | i. The
 * guest checks the first IGN_PMEM_CHECK_BYTES (or the whole region if smaller) through the
 * mapping, rewrites the first IGN_PMEM_WRITE_BYTES with IGN_PMEM_WRITE_TAG | i, and sends a
 * FLUSH; with ign.pmem.ro=1 it instead checks that a write does not stick. */
#define IGN_PMEM_TAG 0x4d454d5000000000ull       /* "\0\0\0\0PMEM" */
#define IGN_PMEM_WRITE_TAG 0x4e45545700000000ull /* "\0\0\0\0WTEN" */
#define IGN_PMEM_CHECK_BYTES (1u << 20)
#define IGN_PMEM_WRITE_BYTES 4096u
#define IGN_OPT_PMEM_RO "ign.pmem.ro="
/* virtio-net: the UDP echo port on the peer. */
#define IGN_NET_ECHO_PORT 7
/* bench-net: the peer's UDP sink (discard) port. A datagram "STATS" sent to it is answered
 * with "rx=<datagrams> bytes=<payload bytes>": everything else it received so far. */
#define IGN_NET_SINK_PORT 9
#define IGN_NET_SINK_STATS "STATS"

#endif
