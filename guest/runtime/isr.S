/* Ring-0 entry points: exceptions, interrupts and the syscall (int3, see layout.h).
 * Each is a handful of instructions, because ring 0 is emulated (~1 us per instruction).
 * Exceptions do not print here: they record what happened and iret to fault_main() in
 * ring 3, which reports it. idt.c (ring 3) installs these addresses in the IDT. */
#include "layout.h"

  .text
  .code64

/* Exception stubs: push a zero error code where the CPU does not, then the vector. */
.macro EXC vec, has_error
exc_\vec:
  .if \has_error == 0
  pushq $0
  .endif
  pushq $\vec
  jmp exc_common
.endm

EXC 0, 0
EXC 1, 0
EXC 2, 0
EXC 3, 0
EXC 4, 0
EXC 5, 0
EXC 6, 0
EXC 7, 0
EXC 8, 1
EXC 9, 0
EXC 10, 1
EXC 11, 1
EXC 12, 1
EXC 13, 1
EXC 14, 1
EXC 15, 0
EXC 16, 0
EXC 17, 1
EXC 18, 0
EXC 19, 0
EXC 20, 0
EXC 21, 1
EXC 22, 0
EXC 23, 0
EXC 24, 0
EXC 25, 0
EXC 26, 0
EXC 27, 0
EXC 28, 0
EXC 29, 1
EXC 30, 1
EXC 31, 0

  .section .rodata
  .balign 8
  .globl exception_stubs
exception_stubs:
  .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
  .quad exc_\v
  .endr

  .text
/* Stack: vector, error, rip, cs, rflags, rsp, ss. The first CPU to fault owns the fault
 * record (struct fault_info in ring0.h); any later fault just parks its CPU. */
exc_common:
  mov $1, %eax
  xchg %eax, fault_claimed(%rip)
  test %eax, %eax
  jnz park_cpu
  popq fault_record + 0(%rip)  /* vector */
  popq fault_record + 8(%rip)  /* error code */
  popq fault_record + 16(%rip) /* rip */
  popq fault_record + 24(%rip) /* cs */
  popq fault_record + 32(%rip) /* rflags */
  popq fault_record + 40(%rip) /* rsp */
  mov %cr2, %rax
  mov %rax, fault_record + 48(%rip)
  /* Report from ring 3, on a stack of its own. */
  pushq $SEL_USER_DS
  lea (fault_stack + USER_STACK_SIZE)(%rip), %rax
  push %rax
  pushq $RFLAGS_USER
  pushq $SEL_USER_CS
  lea user_fault_start(%rip), %rax
  push %rax
  iretq

  .globl park_cpu
park_cpu:
  cli
1:
  hlt
  jmp 1b

/* Syscall (int3): RAX = number, RDI/RSI = arguments, RAX = result. Clobbers RCX, RDX. */
  .globl syscall_entry
syscall_entry:
  cmp $SYS_WRMSR, %rax
  je 1f
  cmp $SYS_RDMSR, %rax
  je 2f
  cmp $SYS_HALT, %rax
  je park_cpu
  cmp $SYS_TRIPLE_FAULT, %rax
  je 3f
  mov $-1, %rax
  iretq
1:
  mov %edi, %ecx
  mov %rsi, %rax
  mov %rsi, %rdx
  shr $32, %rdx
  wrmsr
  xor %eax, %eax
  iretq
2:
  mov %edi, %ecx
  rdmsr
  shl $32, %rdx
  or %rdx, %rax
  iretq
3:
  /* An empty IDT turns the next exception into #DF and then a shutdown (triple fault). */
  lidt null_idt_ptr(%rip)
  ud2

/* Interrupts: count, EOI the local APIC, return. */
  .globl irq_timer
irq_timer:
  incq irq_counts + 0(%rip)
  jmp eoi_return

  .globl irq_serial
irq_serial:
  push %rax
  push %rdx
  mov $0x3fa, %dx /* COM1 IIR: reading it acknowledges a THR-empty interrupt */
  in %dx, %al
  pop %rdx
  pop %rax
  incq irq_counts + 8(%rip)
  jmp eoi_return

/* virtio-mmio: routed edge-triggered, so the handler need not touch the device; ring 3 reads
 * and acknowledges InterruptStatus itself (virtio/irq.c). */
  .globl irq_virtio
irq_virtio:
  incq irq_counts + 16(%rip)
eoi_return:
  push %rax
  mov lapic_eoi_reg(%rip), %rax
  movl $0, (%rax)
  pop %rax
  iretq

  .globl irq_spurious
irq_spurious:
  iretq

  .section .rodata
  .balign 8
null_idt_ptr:
  .word 0
  .quad 0

/* Ring 3: the fault reporter's entry (see exc_common). */
  .text
user_fault_start:
  call fault_main
  ud2
