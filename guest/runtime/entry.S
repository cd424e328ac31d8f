/* Boot entry points and the one-way trip to ring 3.
 *
 * Every entry ends in cpu_start(), which loads this CPU's TSS and IDT and irets to ring 3.
 * Ring-0 code here is emulated at ~1 us per instruction, so it does the minimum; the page
 * tables and GDT are static (tables.S) and the IDT is filled from ring 3 (idt.c).
 *
 * The code is placed at fixed offsets from the load address (0x100000) because the bzImage
 * boot protocol enters the payload at offset 0 (32-bit) and 0x200 (64-bit). */
#include "layout.h"

#define MSR_EFER 0xc0000080
#define EFER_LME 0x100
#define CR0_PE 0x1
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define CR4_SMEP (1 << 20)
#define CR4_SMAP (1 << 21)

  .section .text.boot, "ax"
  .code32

/* +0x000: Linux 32-bit boot protocol. Protected mode, paging off, ESI = boot_params. */
  .globl bz_entry32
bz_entry32:
  mov $ENTRY_BZIMAGE32, %edi
  jmp enter_long_mode

/* +0x010: jumped to by our own real-mode setup code (boot/bzimage_setup.S), ESI = boot_params. */
  .org 0x10
  .globl bz_entry16
bz_entry16:
  mov $ENTRY_BZIMAGE16, %edi
  jmp enter_long_mode

/* +0x020: Xen PVH (XEN_ELFNOTE_PHYS32_ENTRY). Protected mode, paging off, EBX = hvm_start_info. */
  .org 0x20
  .globl pvh_entry32
pvh_entry32:
  mov %ebx, %esi
  mov $ENTRY_PVH, %edi
  /* fall through */

/* EDI = entry kind, ESI = boot information; both survive the mode switch. */
enter_long_mode:
  lgdt gdt_ptr
  mov $pml4, %eax
  mov %eax, %cr3
  mov $CR4_PAE, %eax /* and nothing else: see switch_tables */
  mov %eax, %cr4
  mov $MSR_EFER, %ecx
  rdmsr
  or $EFER_LME, %eax
  wrmsr
  mov %cr0, %eax
  or $(CR0_PG | CR0_PE), %eax
  mov %eax, %cr0
  ljmp $SEL_KERNEL_CS, $long_mode

/* +0x200: Linux 64-bit boot protocol, RSI = boot_params, the loader's page tables and GDT. */
  .org 0x200
  .code64
  .globl bz_entry64
bz_entry64:
  mov $ENTRY_BZIMAGE64, %edi
  jmp switch_tables

/* +0x240: ELF e_entry (Firecracker-style vmlinux boot), same state as bz_entry64. A fixed
 * offset too, so tools (guest/tools/entry_shim.S) can jump to it without reading the ELF. */
  .org 0x240
  .globl elf_entry64
elf_entry64:
  mov $ENTRY_ELF64, %edi
switch_tables:
  /* Ring-0 code runs from user-accessible pages (tables.S), so SMEP/SMAP must be off. */
  mov %cr4, %rax
  and $~(CR4_SMEP | CR4_SMAP), %rax
  mov %rax, %cr4
  mov $pml4, %eax
  mov %rax, %cr3
  lgdt gdt_ptr(%rip)
  pushq $SEL_KERNEL_CS
  pushq $long_mode
  lretq

long_mode:
  mov $SEL_KERNEL_DS, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  xor %eax, %eax
  mov %eax, %fs
  mov %eax, %gs
  /* The upper halves are undefined after a 32->64-bit switch; both values are below 4 GiB. */
  mov %edi, boot_entry_kind(%rip)
  mov %esi, %esi
  mov %rsi, boot_info_addr(%rip)
  lea (ring0_stacks + RING0_STACK_SIZE)(%rip), %rsp
  xor %edi, %edi
  lea user_bsp_start(%rip), %rsi
  jmp cpu_start

/* AP path: ap_trampoline.S jumps here in 64-bit mode; ap_boot_cpu says which CPU we are. */
  .globl ap_entry64
ap_entry64:
  mov $SEL_KERNEL_DS, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  xor %eax, %eax
  mov %eax, %fs
  mov %eax, %gs
  mov ap_boot_cpu(%rip), %edi
  lea 1(%rdi), %eax
  imul $RING0_STACK_SIZE, %eax
  lea ring0_stacks(%rip), %rsp
  add %rax, %rsp
  lea user_ap_start(%rip), %rsi
  /* fall through */

/* cpu_start(EDI = cpu, RSI = ring-3 entry): per-CPU TSS/IDT, then iret to ring 3 with
 * IOPL=3 and interrupts on. Ring 3 always runs with IF=1 (PVM-based KVM forces it anyway);
 * nothing can interrupt until ring 3 has filled the IDT and enabled the local APIC. */
cpu_start:
  mov %edi, %r12d
  mov %rsi, %rbx
  call ring0_cpu_init /* returns this CPU's user stack top */
  pushq $SEL_USER_DS
  push %rax
  pushq $RFLAGS_USER
  pushq $SEL_USER_CS
  push %rbx
  mov %r12d, %edi
  iretq

/* ---- Ring 3 from here on. ---- */
  .text
user_bsp_start:
  /* Ring 0 keeps its state in .data, so clearing .bss here is safe; this runs before any
   * push, so the stack (which lives in .bss) is not in use yet. */
  lea __bss_start(%rip), %rdi
  lea __bss_end(%rip), %rcx
  sub %rdi, %rcx
  xor %eax, %eax
  rep stosb
  call guest_main
  ud2

user_ap_start:
  call ap_main
  ud2
