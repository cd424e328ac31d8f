/* See cmdline.h. */
#include "cmdline.h"

struct each_ctx {
  const char* prefix;
  void (*fn)(struct str value, void* ctx);
  void* ctx;
  bool first_only;
  bool found;
};

static void visit_words(const struct boot_info* bi, struct each_ctx* e) {
  const char* s = bi->cmdline;
  size_t len = bi->cmdline_len, i = 0, n = strlen(e->prefix);
  while (i < len) {
    while (i < len && s[i] == ' ') i++;
    size_t start = i;
    while (i < len && s[i] != ' ') i++;
    struct str w = {s + start, i - start};
    if (w.len && str_starts_with(w, e->prefix)) {
      e->found = true;
      e->fn((struct str){w.p + n, w.len - n}, e->ctx);
      if (e->first_only) return;
    }
  }
}

static void keep_value(struct str v, void* ctx) {
  *(struct str*)ctx = v;
}

bool cmdline_option(const struct boot_info* bi, const char* prefix, struct str* value) {
  struct each_ctx e = {prefix, keep_value, value, true, false};
  visit_words(bi, &e);
  return e.found;
}

void cmdline_for_each(const struct boot_info* bi, const char* prefix,
                      void (*fn)(struct str value, void* ctx), void* ctx) {
  struct each_ctx e = {prefix, fn, ctx, false, false};
  visit_words(bi, &e);
}

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 99;
}

size_t parse_u64(struct str s, bool suffixes, uint64_t* out) {
  size_t i = 0;
  int base = 10;
  if (s.len > 2 && s.p[0] == '0' && (s.p[1] == 'x' || s.p[1] == 'X')) {
    base = 16;
    i = 2;
  }
  size_t digits_start = i;
  uint64_t v = 0;
  while (i < s.len && digit_value(s.p[i]) < base) v = v * base + digit_value(s.p[i++]);
  if (i == digits_start) return 0;
  if (suffixes && i < s.len) {
    char c = s.p[i] | 0x20;
    int shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 0;
    if (shift) {
      v <<= shift;
      i++;
    }
  }
  *out = v;
  return i;
}

bool parse_ipv4(struct str s, uint32_t* addr, int* prefix_len) {
  uint32_t a = 0;
  size_t i = 0;
  for (int part = 0; part < 4; part++) {
    if (part) {
      if (i >= s.len || s.p[i] != '.') return false;
      i++;
    }
    uint64_t v;
    size_t n = parse_u64((struct str){s.p + i, s.len - i}, false, &v);
    if (!n || v > 255) return false;
    a = (a << 8) | (uint32_t)v;
    i += n;
  }
  *prefix_len = 32;
  if (i < s.len && s.p[i] == '/') {
    uint64_t v;
    size_t n = parse_u64((struct str){s.p + i + 1, s.len - i - 1}, false, &v);
    if (!n || v > 32) return false;
    *prefix_len = (int)v;
    i += 1 + n;
  }
  *addr = a;
  return i == s.len;
}
