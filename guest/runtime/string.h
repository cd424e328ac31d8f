/* The few libc string functions the guest needs (gcc may also emit calls to memset/memcpy). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void* memset(void* dst, int c, size_t n);
void* memcpy(void* dst, const void* src, size_t n);
void* memmove(void* dst, const void* src, size_t n);
int memcmp(const void* a, const void* b, size_t n);
size_t strlen(const char* s);
size_t strnlen(const char* s, size_t max);
int strcmp(const char* a, const char* b);

/* A view of a string that is not NUL-terminated (a token of the command line). */
struct str {
  const char* p;
  size_t len;
};
bool str_eq(struct str s, const char* cstr);
bool str_starts_with(struct str s, const char* prefix);
