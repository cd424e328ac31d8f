/* Single-instruction helpers for ring-3 code: port and MMIO access, CPUID, TSC. */
#pragma once

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) {
  __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void outw(uint16_t port, uint16_t v) {
  __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outl(uint16_t port, uint32_t v) {
  __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
static inline uint32_t inl(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline uint32_t mmio_read32(uint64_t addr) {
  return *(volatile uint32_t*)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v) {
  *(volatile uint32_t*)addr = v;
}
static inline void mmio_write8(uint64_t addr, uint8_t v) {
  *(volatile uint8_t*)addr = v;
}
static inline void mmio_write16(uint64_t addr, uint16_t v) {
  *(volatile uint16_t*)addr = v;
}
static inline void mmio_write64(uint64_t addr, uint64_t v) {
  *(volatile uint64_t*)addr = v;
}

struct cpuid_regs {
  uint32_t eax, ebx, ecx, edx;
};
static inline struct cpuid_regs cpuid(uint32_t leaf, uint32_t subleaf) {
  struct cpuid_regs r;
  __asm__ volatile("cpuid"
                   : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                   : "a"(leaf), "c"(subleaf));
  return r;
}

static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) {
  __asm__ volatile("pause" ::: "memory");
}

static inline uint64_t read_rflags(void) {
  uint64_t f;
  __asm__ volatile("pushfq; popq %0" : "=r"(f));
  return f;
}
static inline uint16_t read_cs(void) {
  uint16_t cs;
  __asm__ volatile("mov %%cs, %0" : "=r"(cs));
  return cs;
}
