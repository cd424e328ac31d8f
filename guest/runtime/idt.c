/* Fills the IDT from ring 3: it is plain memory (mapped user-accessible), so there is no need
 * to pay for emulated ring-0 instructions. Ring 0 only loads it (ring0_cpu_init). */
#include "idt.h"

#include "layout.h"
#include "ring0.h"

#define GATE_INTERRUPT 0x8e /* present, 64-bit interrupt gate (IF cleared on entry) */

static void set_gate(int vector, uint64_t handler, int dpl) {
  idt[vector] = (struct idt_gate){
      .offset_low = (uint16_t)handler,
      .selector = SEL_KERNEL_CS,
      .ist = 0,
      .type_attr = (uint8_t)(GATE_INTERRUPT | (dpl << 5)),
      .offset_mid = (uint16_t)(handler >> 16),
      .offset_high = (uint32_t)(handler >> 32),
      .reserved = 0,
  };
}

void idt_install(void) {
  for (int v = 0; v < 32; v++) {
    if (v != VEC_SYSCALL) set_gate(v, exception_stubs[v], 0);
  }
  set_gate(VEC_TIMER, (uint64_t)irq_timer, 0);
  set_gate(VEC_SERIAL, (uint64_t)irq_serial, 0);
  set_gate(VEC_VIRTIO, (uint64_t)irq_virtio, 0);
  set_gate(VEC_SPURIOUS, (uint64_t)irq_spurious, 0);
  set_gate(VEC_SYSCALL, (uint64_t)syscall_entry, 3); /* int3 from ring 3 */
}
