/* The Xen PVH ELF note: XEN_ELFNOTE_PHYS32_ENTRY (18) names the 32-bit entry point.
 * Linked only into ignition-test-pvh.elf. The descriptor is 8 bytes, as in Linux's vmlinux
 * (readers that take 4 bytes get the same little-endian value). */
  .section .note.Xen, "a", @note
  .balign 4
  .long 4  /* namesz: "Xen\0" */
  .long 8  /* descsz */
  .long 18 /* XEN_ELFNOTE_PHYS32_ENTRY */
  .asciz "Xen"
  .balign 4
  .quad pvh_entry32
