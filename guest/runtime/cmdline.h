/* Kernel command-line options (space-separated words) for ring-3 code: the first value of an
 * option, or every value of an option given several times (virtio_mmio.device=...). */
#pragma once

#include <stdbool.h>

#include "bootinfo.h"
#include "string.h"

/* The value after `prefix` (e.g. "ign.exit=") of its first occurrence; false if absent. */
bool cmdline_option(const struct boot_info* bi, const char* prefix, struct str* value);
/* Calls fn with the value of every occurrence of `prefix`, in order. */
void cmdline_for_each(const struct boot_info* bi, const char* prefix,
                      void (*fn)(struct str value, void* ctx), void* ctx);

/* Number parsing for option values: decimal or 0x-hex, with an optional K/M/G suffix where
 * `suffixes` is true (Linux memparse). Returns the characters consumed, 0 if none. */
size_t parse_u64(struct str s, bool suffixes, uint64_t* out);
/* Dotted-quad IPv4 address ("10.0.2.15"), in host order; an optional "/<prefix>" after it
 * fills *prefix_len (else 32). */
bool parse_ipv4(struct str s, uint32_t* addr, int* prefix_len);
