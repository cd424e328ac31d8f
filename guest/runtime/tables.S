/* Static CPU tables: identity page tables for the low 4 GiB and the GDT.
 * Built at assembly time so ring 0 (emulated, ~1 us per instruction here) never fills them. */
#include "layout.h"

#define PTE_P 0x1
#define PTE_RW 0x2
#define PTE_US 0x4 /* every mapping is user-accessible: test code runs in ring 3 */
#define PTE_PWT 0x8
#define PTE_PCD 0x10
#define PTE_PS 0x80

  .section .data.pagetables, "aw"
  .balign 4096
  .globl pml4
pml4:
  .quad pdpt + (PTE_P | PTE_RW | PTE_US)
  .fill 511, 8, 0

pdpt:
  .quad pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
  .quad pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
  .fill 508, 8, 0

/* Four page directories of 2 MiB pages = 4 GiB. The MMIO gap is mapped uncached. */
pd:
  .set addr, 0
  .rept 2048
  .if addr >= MMIO_GAP_START
  .quad addr | (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PWT | PTE_PCD)
  .else
  .quad addr | (PTE_P | PTE_RW | PTE_US | PTE_PS)
  .endif
  .set addr, addr + 0x200000
  .endr

  .section .data.gdt, "aw"
  .balign 16
  .globl gdt
gdt:
  .quad 0                  /* null */
  .quad 0x00af9a000000ffff /* 0x08 kernel code, 64-bit */
  .quad 0x00cf92000000ffff /* 0x10 kernel data */
  .quad 0x00cff2000000ffff /* 0x18 user data, DPL 3 */
  .quad 0x00affa000000ffff /* 0x20 user code, 64-bit, DPL 3 */
  /* GDT_TSS_INDEX: one 16-byte TSS descriptor per CPU, filled by ring0_cpu_init(). */
  .fill 2 * MAX_CPUS, 8, 0
gdt_end:

  .balign 8
  .globl gdt_ptr
gdt_ptr:
  .word gdt_end - gdt - 1
  .quad gdt
