/* printf-style formatting for the guest: %c %s %.*s %d %i %u %x %p, with l/ll/z, width and 0-fill.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

typedef void (*putc_fn)(void* ctx, char c);

void vformat(putc_fn out, void* ctx, const char* fmt, va_list ap);

/* Straight to the serial console. */
void kprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

/* Into a fixed buffer, always NUL-terminated; output beyond the buffer is dropped. */
struct strbuf {
  char* data;
  size_t cap;
  size_t len;
};
void sbprintf(struct strbuf* b, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
