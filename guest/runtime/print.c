/* A small printf: enough conversions for the report lines, nothing locale or float. */
#include "print.h"

#include <stdbool.h>
#include <stdint.h>

#include "serial.h"

static void emit_number(putc_fn out, void* ctx, uint64_t v, unsigned base, bool neg, int width,
                        char pad) {
  char tmp[24];
  int n = 0;
  do {
    unsigned d = v % base;
    tmp[n++] = (char)(d < 10 ? '0' + d : 'a' + d - 10);
    v /= base;
  } while (v);
  int len = n + (neg ? 1 : 0);
  if (neg && pad == '0') out(ctx, '-');
  for (; len < width; len++) out(ctx, pad);
  if (neg && pad != '0') out(ctx, '-');
  while (n) out(ctx, tmp[--n]);
}

void vformat(putc_fn out, void* ctx, const char* fmt, va_list ap) {
  for (; *fmt; fmt++) {
    if (*fmt != '%') {
      out(ctx, *fmt);
      continue;
    }
    fmt++;
    char pad = ' ';
    int width = 0;
    int precision = -1;
    int longs = 0;
    if (*fmt == '0') pad = '0', fmt++;
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    if (*fmt == '.' && fmt[1] == '*') precision = va_arg(ap, int), fmt += 2;
    while (*fmt == 'l') longs++, fmt++;
    if (*fmt == 'z') longs = 1, fmt++;
    switch (*fmt) {
      case 'c':
        out(ctx, (char)va_arg(ap, int));
        break;
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        for (int i = 0; s[i] && (precision < 0 || i < precision); i++) out(ctx, s[i]);
        break;
      }
      case 'd':
      case 'i': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        emit_number(out, ctx, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, v < 0, width, pad);
        break;
      }
      case 'u':
      case 'x':
      case 'p': {
        uint64_t v = (longs || *fmt == 'p') ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
        if (*fmt == 'p') out(ctx, '0'), out(ctx, 'x');
        emit_number(out, ctx, v, *fmt == 'u' ? 10 : 16, false, width, pad);
        break;
      }
      case '%':
        out(ctx, '%');
        break;
      default: /* unknown conversion: show it rather than guess */
        out(ctx, '%');
        if (*fmt)
          out(ctx, *fmt);
        else
          fmt--;
        break;
    }
  }
}

static void serial_out(void* ctx, char c) {
  (void)ctx;
  serial_putc(c);
}

void kprintf(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vformat(serial_out, 0, fmt, ap);
  va_end(ap);
}

static void buf_out(void* ctx, char c) {
  struct strbuf* b = ctx;
  if (b->len + 1 < b->cap) b->data[b->len++] = c;
  b->data[b->len] = 0;
}

void sbprintf(struct strbuf* b, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vformat(buf_out, b, fmt, ap);
  va_end(ap);
}
