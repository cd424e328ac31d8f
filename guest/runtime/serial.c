/* Polled 16550 driver. Every port access is a VM exit (tens of microseconds when the VMM
 * emulates it in user space), so output polls LSR once per FIFO-full of bytes rather than
 * once per byte: when THR-empty is set the 16-byte transmit FIFO is empty. A UART without a
 * FIFO (Firecracker's) transmits each byte at once, so the bursts are safe there too. The
 * busy-wait is bounded: a UART that never reports THR-empty must not hang the guest. */
#include "serial.h"

#include "cpu.h"

#define UART_FCR 2
#define FIFO_SIZE 16

static int tx_room; /* bytes we may write before polling LSR again */

void serial_init(void) {
  outb(COM1 + UART_IER, 0);    /* polled */
  outb(COM1 + UART_LCR, 0x03); /* 8N1 */
  outb(COM1 + UART_FCR, 0x07); /* enable and clear both FIFOs */
  outb(COM1 + UART_MCR, 0x03); /* DTR, RTS */
  tx_room = 0;
}

void serial_putc(char c) {
  if (tx_room == 0) {
    for (int i = 0; i < 100000 && !(inb(COM1 + UART_LSR) & UART_LSR_THRE); i++) cpu_relax();
    tx_room = FIFO_SIZE;
  }
  outb(COM1 + UART_RBR, (uint8_t)c);
  tx_room--;
}

void serial_write(const char* s, uint64_t len) {
  for (uint64_t i = 0; i < len; i++) serial_putc(s[i]);
}

int serial_getc_until(uint64_t deadline_tsc) {
  while (!(inb(COM1 + UART_LSR) & UART_LSR_DR)) {
    if (rdtsc() > deadline_tsc) return -1;
    cpu_relax();
  }
  return inb(COM1 + UART_RBR);
}
