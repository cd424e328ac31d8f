/* A stand-in boot loader for testing the guest's 64-bit and bzImage 32-bit entry points under
 * QEMU, which itself only boots PVH ELFs and real-mode bzImages. QEMU boots this shim as a
 * PVH kernel and loads the test image with `-device loader`; the shim turns hvm_start_info
 * into a Linux zero page (boot_params at 0x7000) and jumps to SHIM_TARGET the way a VMM's
 * direct boot would:
 *   SHIM_64=1: long mode, identity-mapped 4 GiB (no U bit), CS=0x10, RSI = boot_params
 *   SHIM_64=0: 32-bit protected mode, paging off, ESI = boot_params
 * Built three times (guest/CMakeLists.txt) for elf64, bzimage64 and bzimage32. */

#define BP 0x7000

  .section .note.Xen, "a", @note
  .balign 4
  .long 4, 8, 18 /* namesz, descsz, XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .balign 4
  .quad shim_start

  .text
  .code32
  .globl shim_start
shim_start: /* EBX = hvm_start_info */
  cld
  mov $BP, %edi
  xor %eax, %eax
  mov $1024, %ecx
  rep stosl
  movw $0xaa55, BP + 0x1fe   /* boot_flag */
  movl $0x53726448, BP + 0x202 /* "HdrS" */
  movw $0x020e, BP + 0x206   /* version */
  movb $0xff, BP + 0x210     /* type_of_loader: undefined */
  movb $0x01, BP + 0x211     /* loadflags: LOADED_HIGH */
  mov 0x18(%ebx), %eax       /* cmdline_paddr */
  mov %eax, BP + 0x228       /* cmd_line_ptr */
  mov 0x20(%ebx), %eax       /* rsdp_paddr */
  mov %eax, BP + 0x70        /* acpi_rsdp_addr */
  mov 0x24(%ebx), %eax
  mov %eax, BP + 0x74
  /* memmap (24-byte entries) -> e820_table (20-byte entries) */
  mov 0x28(%ebx), %esi
  mov 0x30(%ebx), %ecx
  mov %cl, BP + 0x1e8
  mov $(BP + 0x2d0), %edi
1:
  test %ecx, %ecx
  jz 2f
  movsl
  movsl
  movsl
  movsl
  movsl
  add $4, %esi
  dec %ecx
  jmp 1b
2:
#if SHIM_64
  lgdt gdt_ptr
  mov $pml4, %eax
  mov %eax, %cr3
  mov %cr4, %eax
  or $0x20, %eax /* PAE */
  mov %eax, %cr4
  mov $0xc0000080, %ecx /* EFER */
  rdmsr
  or $0x100, %eax /* LME */
  wrmsr
  mov %cr0, %eax
  or $0x80000001, %eax /* PG | PE */
  mov %eax, %cr0
  ljmp $0x10, $long_mode

  .code64
long_mode:
  mov $0x18, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov $0x8ff0, %esp
  mov $BP, %esi
  mov $SHIM_TARGET, %eax
  jmp *%rax

  .data
  .balign 8
gdt:
  .quad 0, 0
  .quad 0x00af9a000000ffff /* 0x10: 64-bit code, as Linux's __BOOT_CS */
  .quad 0x00cf92000000ffff /* 0x18: data */
gdt_ptr:
  .word gdt_ptr - gdt - 1
  .long gdt

  .balign 4096
pml4:
  .quad pdpt + 3
  .fill 511, 8, 0
pdpt:
  .quad pd + 0x0003, pd + 0x1003, pd + 0x2003, pd + 0x3003
  .fill 508, 8, 0
pd:
  .set addr, 0
  .rept 2048
  .quad addr | 0x83 /* present, writable, 2 MiB; no U bit: the guest must map its own */
  .set addr, addr + 0x200000
  .endr
#else
  mov $BP, %esi
  mov $SHIM_TARGET, %eax
  jmp *%eax
#endif
