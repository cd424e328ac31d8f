/* echo (manual): waits for the host to type one line on the console and reports it. */
#include "cpu.h"
#include "report.h"
#include "serial.h"
#include "tests.h"
#include "time.h"

#define ECHO_MAX 256
#define ECHO_TIMEOUT_US 30000000

void test_echo(struct guest* g) {
  (void)g;
  while (inb(COM1 + UART_LSR) & UART_LSR_DR) inb(COM1 + UART_RBR); /* drop stale input */
  report_info(IGN_INFO_ECHO_READY);
  char line[ECHO_MAX + 1];
  int n = 0;
  uint64_t deadline = deadline_after_us(ECHO_TIMEOUT_US);
  for (;;) {
    int c = serial_getc_until(deadline);
    if (c < 0) {
      report_fail(IGN_TEST_ECHO, "timeout got=%d", n);
      return;
    }
    if (c == '\n' || c == '\r') break;
    if (n < ECHO_MAX) line[n++] = (char)c;
  }
  line[n] = 0;
  report_info("echo=%s", line);
  report_pass(IGN_TEST_ECHO, "len=%d", n);
}
