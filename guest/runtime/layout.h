/* Constants shared by the guest's assembly and C: selectors, vectors, sizes, MMIO addresses.
 * Only #defines, so entry.S and isr.S can include it too. */
#pragma once

/* GDT layout (see tables.S). User selectors carry RPL 3. */
#define SEL_KERNEL_CS 0x08
#define SEL_KERNEL_DS 0x10
#define SEL_USER_DS (0x18 | 3)
#define SEL_USER_CS (0x20 | 3)
#define GDT_TSS_INDEX 5 /* first TSS descriptor; each takes two 8-byte slots */
#define MAX_CPUS 16
#define GDT_ENTRIES (GDT_TSS_INDEX + 2 * MAX_CPUS)

/* Ring 3 runs with IOPL=3 and IF=1; bit 1 of RFLAGS is always set. Ring 3 never uses cli/sti:
 * a hypervisor that keeps the real IOPL at 0 in ring 3 (PVM) would fault them. */
#define RFLAGS_USER 0x3202

#define RING0_STACK_SIZE 4096
#define USER_STACK_SIZE 16384

/* Interrupt vectors. 0-31 are exceptions. */
#define VEC_TIMER 0x30
#define VEC_SERIAL 0x31
#define VEC_VIRTIO 0x32 /* every virtio-mmio device interrupt (edge, IOAPIC-routed) */
/* Syscalls are int3 (#BP, gate DPL 3). `int n` from ring 3 would be the obvious choice, but a
 * PVM-based KVM cannot emulate it (the guest gets #UD); #BP is passed through everywhere. */
#define VEC_SYSCALL 3
#define VEC_SPURIOUS 0xff

/* Syscall numbers (RAX); arguments in RDI, RSI; result in RAX. */
#define SYS_WRMSR 1
#define SYS_RDMSR 2
#define SYS_HALT 3 /* cli; hlt forever: parks an AP or a CPU that lost a fault race */
#define SYS_TRIPLE_FAULT 4

/* Entry kinds, stored by the boot entry code for ring 3 to report. */
#define ENTRY_PVH 1
#define ENTRY_ELF64 2
#define ENTRY_BZIMAGE64 3
#define ENTRY_BZIMAGE32 4
#define ENTRY_BZIMAGE16 5 /* our own real-mode setup code ran first (QEMU/SeaBIOS) */

/* Low memory the guest owns: the AP start-up trampoline (SIPI vector = address >> 12). */
#define AP_TRAMPOLINE_ADDR 0x10000

#define DEFAULT_LAPIC_BASE 0xfee00000
#define DEFAULT_IOAPIC_BASE 0xfec00000
#define BOOT_TIMER_ADDR 0xd0000000
#define MMIO_GAP_START 0xd0000000
#define LOAD_ADDR 0x100000
