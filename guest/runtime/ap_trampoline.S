/* Real-mode start-up code for application processors. smp.c copies it to
 * AP_TRAMPOLINE_ADDR and sends INIT-SIPI-SIPI; the AP starts here in real mode with
 * CS = AP_TRAMPOLINE_ADDR >> 4, IP = 0, and goes straight to long mode (PE and PG set in one
 * move) using the BSP's GDT and page tables, then continues at ap_entry64 in entry.S.
 * All addresses it needs are link-time constants stored right after the code. */
#include "layout.h"

#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define OFF(label) ((label) - ap_trampoline_start)

  .section .rodata.ap_trampoline, "a"
  .code16
  .globl ap_trampoline_start, ap_trampoline_end
ap_trampoline_start:
  cli
  mov %cs, %ax
  mov %ax, %ds
  lgdtl OFF(tr_gdt_ptr)
  mov $CR4_PAE, %eax
  mov %eax, %cr4
  movl OFF(tr_cr3), %eax
  mov %eax, %cr3
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  mov %cr0, %eax
  or $(CR0_PE | CR0_PG), %eax
  mov %eax, %cr0
  ljmpl *OFF(tr_far_jump)

  .balign 8
tr_gdt_ptr:
  .word GDT_ENTRIES * 8 - 1
  .long gdt
tr_cr3:
  .long pml4
tr_far_jump:
  .long ap_entry64
  .word SEL_KERNEL_CS
ap_trampoline_end:
  .code64
