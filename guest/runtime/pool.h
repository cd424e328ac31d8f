/* Guest RAM for device buffers: a bump allocator over the usable RAM above the image (from the
 * boot memory map, minus any initrd). Identity-mapped and user-accessible like all low memory,
 * so ring 3 hands its addresses straight to devices. Tests release what they took with
 * pool_mark/pool_release. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "bootinfo.h"

#define PAGE_SIZE 4096

/* Finds the pool on first use; later calls do nothing. */
void pool_init(const struct boot_info* bi);
/* Zeroed memory, `align` a power of two; 0 if the pool is exhausted (or not initialised). */
void* pool_alloc(size_t size, size_t align);
/* The same without zeroing (and so without touching) the memory: for pages given away. */
void* pool_alloc_untouched(size_t size, size_t align);
uint64_t pool_mark(void);
void pool_release(uint64_t mark);
uint64_t pool_free_bytes(void);
