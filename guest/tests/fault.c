/* fault (manual): raises #UD in ring 3 so the host can check that exceptions are reported. */
#include "tests.h"

void test_fault(struct guest* g) {
  (void)g;
  __asm__ volatile("ud2");
}
