/* COM1 (16550 UART at 0x3f8), polled from ring 3. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define COM1 0x3f8
#define UART_RBR 0 /* receive buffer (read) / transmit holding (write) */
#define UART_IER 1
#define UART_IIR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_LSR_DR 0x01   /* data ready */
#define UART_LSR_THRE 0x20 /* transmit holding register empty */
#define UART_IER_THRI 0x02
#define UART_MCR_OUT2 0x08 /* gates the IRQ line on PC-style boards */

void serial_init(void);
void serial_putc(char c);
void serial_write(const char* s, uint64_t len);
/* Returns -1 if no byte arrives before the deadline (a TSC value). */
int serial_getc_until(uint64_t deadline_tsc);
