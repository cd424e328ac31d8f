/* Ring-3 side of the syscall (int3, see layout.h): number in RAX, arguments in RDI/RSI. */
#include "syscall.h"

#include "layout.h"

static uint64_t syscall2(uint64_t nr, uint64_t a, uint64_t b) {
  uint64_t ret;
  __asm__ volatile("int3" : "=a"(ret), "+D"(a), "+S"(b) : "a"(nr) : "rcx", "rdx", "memory");
  return ret;
}

uint64_t sys_rdmsr(uint32_t msr) {
  return syscall2(SYS_RDMSR, msr, 0);
}
void sys_wrmsr(uint32_t msr, uint64_t value) {
  syscall2(SYS_WRMSR, msr, value);
}

void sys_halt(void) {
  syscall2(SYS_HALT, 0, 0);
  __builtin_unreachable();
}

void sys_triple_fault(void) {
  syscall2(SYS_TRIPLE_FAULT, 0, 0);
  __builtin_unreachable();
}
