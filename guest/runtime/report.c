/* Report lines are built and sent one character at a time; control characters inside a
 * line become '?', so a value (say, a command line with a newline) cannot forge a line. */
#include "report.h"

#include <stdarg.h>

#include "print.h"
#include "serial.h"

static int passes;
static int fails;

static void line_out(void* ctx, char c) {
  (void)ctx;
  serial_putc(((unsigned char)c < 0x20 || c == 0x7f) ? '?' : c);
}

static void line(const char* prefix, const char* test, const char* fmt, va_list ap) {
  kprintf("%s ", prefix);
  if (test) kprintf("%s%s", test, fmt && *fmt ? " " : "");
  if (fmt) vformat(line_out, 0, fmt, ap);
  serial_putc('\n');
}

void report_begin(const char* entry) {
  kprintf(IGN_LINE_BEGIN " entry=%s\n", entry);
}

void report_info(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line(IGN_LINE_INFO, 0, fmt, ap);
  va_end(ap);
}

void report_pass(const char* test, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line(IGN_LINE_PASS, test, fmt, ap);
  va_end(ap);
  passes++;
}

void report_fail(const char* test, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  line(IGN_LINE_FAIL, test, fmt, ap);
  va_end(ap);
  fails++;
}

void report_end(void) {
  kprintf(IGN_LINE_END " pass=%d fail=%d\n", passes, fails);
}

int report_fail_count(void) {
  return fails;
}
