/* See pool.h. */
#include "pool.h"

#include "guest.h"
#include "string.h"

#define POOL_ALIGN 0x200000 /* keep clear of the image's last 2 MiB page */

static uint64_t next, limit;

static uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

void pool_init(const struct boot_info* bi) {
  if (limit) return;
  uint64_t start = align_up((uint64_t)_end, POOL_ALIGN);
  for (int i = 0; i < bi->memmap_count; i++) {
    const struct memmap_entry* e = &bi->memmap[i];
    if (e->type != E820_RAM || e->addr > start || e->addr + e->size <= start) continue;
    uint64_t end = e->addr + e->size;
    if (end > MMIO_GAP_START) end = MMIO_GAP_START; /* the identity map covers 4 GiB */
    if (bi->initrd_size && bi->initrd_addr >= start && bi->initrd_addr < end)
      end = bi->initrd_addr & ~(uint64_t)(PAGE_SIZE - 1);
    next = start;
    limit = end;
  }
}

void* pool_alloc_untouched(size_t size, size_t align) {
  uint64_t p = align_up(next, align ? align : 1);
  if (!limit || p + size > limit || p + size < p) return 0;
  next = p + size;
  return (void*)p;
}

void* pool_alloc(size_t size, size_t align) {
  void* p = pool_alloc_untouched(size, align);
  if (p) memset(p, 0, size);
  return p;
}

uint64_t pool_mark(void) {
  return next;
}
void pool_release(uint64_t mark) {
  next = mark;
}
uint64_t pool_free_bytes(void) {
  return limit > next ? limit - next : 0;
}
