/* The only C that runs in ring 0: per-CPU set-up of the TSS and IDT register before the CPU
 * drops to ring 3 (called from cpu_start in entry.S). Plus the data ring 0 owns. */
#include "ring0.h"

#include <stddef.h>

/* 64-bit TSS: only rsp0 matters (the stack for ring 3 -> ring 0 transitions). */
struct tss {
  uint32_t reserved0;
  uint64_t rsp0;
  uint64_t rsp1;
  uint64_t rsp2;
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
} __attribute__((packed));

struct idt_ptr {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));

RING0_DATA uint32_t boot_entry_kind;
RING0_DATA uint64_t boot_info_addr;
RING0_DATA volatile uint32_t ap_boot_cpu;
RING0_DATA uint32_t fault_claimed;
RING0_DATA struct fault_info fault_record;
RING0_DATA volatile uint64_t irq_counts[3];
RING0_DATA uint64_t lapic_eoi_reg = DEFAULT_LAPIC_BASE + 0xb0;
RING0_DATA struct idt_gate idt[256];
/* All TSSs share one I/O permission bitmap that allows every port. Hardware IOPL=3 is enough
 * under VMX/SVM, but a hypervisor that runs guest ring 3 with the real IOPL at 0 (like the
 * PVM-based KVM on our development machines) emulates port I/O and consults this bitmap. The
 * bitmap must lie within 64 KiB of each TSS (iomap_base is 16 bits), hence one struct. */
struct tss_block {
  struct tss tss[MAX_CPUS];
  uint8_t io_bitmap[65536 / 8 + 8]; /* all zero: every port allowed */
};
RING0_DATA static struct tss_block tss_block;
static const struct idt_ptr idt_ptr = {sizeof(idt) - 1, (uint64_t)idt};

/* Stacks are in .bss: nothing is on them yet when ring 3 clears it (see entry.S). */
uint8_t ring0_stacks[MAX_CPUS][RING0_STACK_SIZE] __attribute__((aligned(16)));
uint8_t user_stacks[MAX_CPUS][USER_STACK_SIZE] __attribute__((aligned(16)));
uint8_t fault_stack[USER_STACK_SIZE] __attribute__((aligned(16)));

extern uint64_t gdt[GDT_ENTRIES];

uint64_t ring0_cpu_init(uint32_t cpu);

/* Returns the top of this CPU's ring-3 stack. */
uint64_t ring0_cpu_init(uint32_t cpu) {
  struct tss* t = &tss_block.tss[cpu];
  t->rsp0 = (uint64_t)(ring0_stacks[cpu] + RING0_STACK_SIZE);
  t->iomap_base = (uint16_t)((uint8_t*)tss_block.io_bitmap - (uint8_t*)t);

  uint64_t base = (uint64_t)t;
  uint64_t limit = t->iomap_base + sizeof(tss_block.io_bitmap) - 1;
  uint32_t index = GDT_TSS_INDEX + 2 * cpu;
  gdt[index] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
               ((limit >> 16) << 48) | (((base >> 24) & 0xff) << 56);
  gdt[index + 1] = base >> 32;
  __asm__ volatile("ltr %w0" ::"r"(index * 8));
  __asm__ volatile("lidt %0" ::"m"(idt_ptr));
  return (uint64_t)(user_stacks[cpu] + USER_STACK_SIZE);
}
