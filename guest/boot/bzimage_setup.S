/* The real-mode part of ignition-test.bzImage: the Linux setup header (boot protocol 2.14)
 * and a small setup program for loaders that start a bzImage in real mode (QEMU with
 * SeaBIOS's linuxboot option ROM). Like Linux's own setup code, the program builds a zero page
 * (boot_params) from the header and the BIOS E820 map, switches to 32-bit protected mode and
 * jumps to the payload (here bz_entry16 = code32_start + 0x10) with ESI = boot_params.
 *
 * Linked at 0: offsets are from the start of the setup segment. The zero page is built at
 * ZERO_PAGE in the loader-provided heap (it cannot live at offset 0: its E820 table at 0x2d0
 * would overwrite this code). pack_bzimage.py fills in setup_sects, syssize and init_size. */

#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define ZERO_PAGE 0x1000
#define E820_TABLE (ZERO_PAGE + 0x2d0)
#define E820_ENTRIES (ZERO_PAGE + 0x1e8)
#define HDR_START 0x1f1
#define HDR_END 0x268
#define E820_MAX 128
#define SMAP 0x534d4150
#define BOOT_CS 0x10 /* as in Linux: __BOOT_CS / __BOOT_DS */
#define BOOT_DS 0x18
#define BZ_ENTRY16_OFFSET 0x10

  .code16
  .text
  .globl _start
_start:
  .org 0x1f1
setup_sects: .byte 0
root_flags: .word 0
syssize: .long 0
ram_size: .word 0
vid_mode: .word 0xffff
root_dev: .word 0
boot_flag: .word 0xaa55
  /* 0x200: real-mode entry point (CS = setup segment + 0x20, IP = 0) */
  .byte 0xeb, setup_code - 0x202 /* jmp short */
header: .ascii "HdrS"
version: .word 0x020e
realmode_swtch: .long 0
start_sys_seg: .word 0x1000
kernel_version: .word version_string - 0x200
type_of_loader: .byte 0
loadflags: .byte LOADED_HIGH
setup_move_size: .word 0x8000
code32_start: .long 0x100000
ramdisk_image: .long 0
ramdisk_size: .long 0
bootsect_kludge: .long 0
heap_end_ptr: .word 0
ext_loader_ver: .byte 0
ext_loader_type: .byte 0
cmd_line_ptr: .long 0
initrd_addr_max: .long 0x7fffffff
kernel_alignment: .long 0x200000
relocatable_kernel: .byte 0
min_alignment: .byte 21
xloadflags: .word XLF_KERNEL_64
cmdline_size: .long 0xffff
hardware_subarch: .long 0
hardware_subarch_data: .quad 0
payload_offset: .long 0
payload_length: .long 0
setup_data: .quad 0
pref_address: .quad 0x100000
init_size: .long 0
handover_offset: .long 0
  /* pack_bzimage.py checks that the fields above landed at their protocol offsets. */

version_string: .asciz "ignition-test"

setup_code:
  cli
  /* Use the setup segment for CS and ES too, so labels are plain offsets. */
  push %ds
  push $1f
  lretw
1:
  mov %ds, %ax
  mov %ax, %es
  cld
  /* Zero page: cleared, then the setup header (as the loader filled it in) copied in. */
  xor %eax, %eax
  mov $ZERO_PAGE, %di
  mov $1024, %cx
  rep stosl
  mov $HDR_START, %si
  mov $(ZERO_PAGE + HDR_START), %di
  mov $(HDR_END - HDR_START), %cx
  rep movsb
  /* E820 map into boot_params.e820_table; the count is kept in memory (BIOSes clobber). */
  movb $0, E820_ENTRIES
  xor %ebx, %ebx
  mov $E820_TABLE, %di
e820_next:
  mov $0xe820, %eax
  mov $20, %ecx
  mov $SMAP, %edx
  int $0x15
  jc e820_done
  cmp $SMAP, %eax
  jne e820_done
  incb E820_ENTRIES
  add $20, %di
  cmpb $E820_MAX, E820_ENTRIES
  jae e820_done
  test %ebx, %ebx
  jnz e820_next
e820_done:

  /* Protected mode. The GDT pointer and the far-jump target need linear addresses. */
  xor %eax, %eax
  mov %ds, %ax
  shl $4, %eax
  lea ZERO_PAGE(%eax), %esi /* ESI = boot_params, for the payload */
  addl %eax, gdt_desc + 2
  addl %eax, pm_jump
  lgdtl gdt_desc
  mov %cr0, %eax
  or $1, %eax
  mov %eax, %cr0
  ljmpl *pm_jump

  .code32
protected_mode:
  mov $BOOT_DS, %eax
  mov %eax, %ds
  mov %eax, %es
  mov %eax, %ss
  mov %eax, %fs
  mov %eax, %gs
  mov 0x214(%esi), %eax /* code32_start */
  add $BZ_ENTRY16_OFFSET, %eax
  jmp *%eax

  .balign 8
gdt:
  .quad 0
  .quad 0
  .quad 0x00cf9a000000ffff /* BOOT_CS: flat 32-bit code */
  .quad 0x00cf92000000ffff /* BOOT_DS: flat data */
gdt_desc:
  .word gdt_desc - gdt - 1
  .long gdt /* + linear base of the setup segment, patched above */
pm_jump:
  .long protected_mode /* + linear base, patched above */
  .word BOOT_CS
