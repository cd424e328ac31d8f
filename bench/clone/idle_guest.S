/* The guest of bench/clone.sh's density and snapshot sections: a PVH ELF that prints a line,
 * writes one word to each page of FILL_MIB MiB of RAM (so a snapshot holds that much non-zero
 * memory), writes the boot-time marker (`ignition snapshot` takes its snapshot there) and
 * prints IDLE-READY. Then, by default, it halts with interrupts off: a restored clone sits in
 * KVM's halt and uses no CPU. Built with -DWAIT_INPUT it instead waits for bytes on COM1 and,
 * for each, writes again to the first DIRTY_MIB MiB of the filled pages and prints
 * IDLE-DIRTIED: a known number of dirty pages for a diff snapshot.
 * It runs in 32-bit protected mode with paging off, straight from the PVH entry, without a
 * stack: ring-0 code, which some hosts emulate, so it stays short. */
#ifndef FILL_MIB
#define FILL_MIB 32
#endif
#ifndef DIRTY_MIB
#define DIRTY_MIB 8
#endif
#define FILL_BASE 0x1000000 /* 16 MiB: above the image and anything a loader puts in RAM */
#define PAGES_PER_MIB 256
#define COM1 0x3f8
#define COM1_LSR (COM1 + 5)
#define LSR_DATA_READY 1
#define BOOT_TIMER 0xd0000000
#define BOOT_TIMER_MAGIC 123
#define XEN_ELFNOTE_PHYS32_ENTRY 18

  .section .note.Xen, "a", @note
  .p2align 2
  .long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
  .asciz "Xen"
  .long pvh_entry

.macro PUTS msg
  mov $\msg, %esi
  mov $COM1, %dx
1:
  movb (%esi), %al
  test %al, %al
  jz 2f
  outb %al, %dx
  inc %esi
  jmp 1b
2:
.endm

/* Writes `value` (a register) to the first word of `pages` pages from FILL_BASE. */
.macro TOUCH pages, value
  mov $FILL_BASE, %edi
  mov $\pages, %ecx
1:
  mov \value, (%edi)
  add $4096, %edi
  dec %ecx
  jnz 1b
.endm

  .text
  .code32
  .globl pvh_entry
pvh_entry:
  cli
  PUTS begin
  TOUCH (FILL_MIB * PAGES_PER_MIB), %edi
  movb $BOOT_TIMER_MAGIC, BOOT_TIMER
  PUTS ready
#ifdef WAIT_INPUT
  xor %ebp, %ebp
wait_byte:
  mov $COM1_LSR, %dx
  inb %dx, %al
  test $LSR_DATA_READY, %al
  jz wait_byte
  mov $COM1, %dx
  inb %dx, %al
  inc %ebp
  TOUCH (DIRTY_MIB * PAGES_PER_MIB), %ebp
  PUTS dirtied
  jmp wait_byte
#else
halt:
  hlt
  jmp halt
#endif

  .section .rodata
begin:
  .asciz "IDLE-BEGIN\n"
ready:
  .asciz "IDLE-READY\n"
dirtied:
  .asciz "IDLE-DIRTIED\n"
