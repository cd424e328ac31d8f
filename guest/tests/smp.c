/* smp: starts every AP the MADT lists with INIT-SIPI-SIPI, one at a time. Each AP runs the
 * real-mode trampoline to long mode, takes its own stacks and TSS, drops to ring 3 and checks
 * in by incrementing cpus_online, then parks itself (cli; hlt) through a syscall. */
#include <stdatomic.h>

#include "apic.h"
#include "cpu.h"
#include "report.h"
#include "ring0.h"
#include "string.h"
#include "syscall.h"
#include "tests.h"
#include "time.h"

#define SIPI_RETRY_US 200
#define AP_ONLINE_TIMEOUT_US 5000000

static atomic_uint cpus_online;

void ap_main(uint32_t cpu);
void ap_main(uint32_t cpu) {
  (void)cpu;
  atomic_fetch_add(&cpus_online, 1);
  sys_halt();
}

static bool wait_online(unsigned before, uint64_t timeout_us) {
  uint64_t deadline = deadline_after_us(timeout_us);
  while (atomic_load(&cpus_online) == before) {
    if (deadline_passed(deadline)) return false;
    cpu_relax();
  }
  return true;
}

void test_smp(struct guest* g) {
  const struct acpi_info* a = &g->acpi;
  if (!a->have_madt) {
    report_fail(IGN_TEST_SMP, "no-madt");
    return;
  }
  atomic_store(&cpus_online, 1);
  memcpy((void*)AP_TRAMPOLINE_ADDR, ap_trampoline_start,
         (size_t)(ap_trampoline_end - ap_trampoline_start));

  int listed = a->cpu_count < MAX_CPUS ? a->cpu_count : MAX_CPUS;
  uint32_t next_cpu = 1;
  for (int i = 0; i < listed; i++) {
    uint32_t id = a->apic_ids[i];
    if (id == g->bsp_apic_id) continue;
    unsigned before = atomic_load(&cpus_online);
    ap_boot_cpu = next_cpu++;
    if (!lapic_send_ipi(id, LAPIC_ICR_INIT)) report_info("smp.init-stuck=%u", id);
    delay_us(SIPI_RETRY_US);
    lapic_send_ipi(id, LAPIC_ICR_STARTUP | (AP_TRAMPOLINE_ADDR >> 12));
    if (!wait_online(before, SIPI_RETRY_US)) {
      lapic_send_ipi(id, LAPIC_ICR_STARTUP | (AP_TRAMPOLINE_ADDR >> 12));
      if (!wait_online(before, AP_ONLINE_TIMEOUT_US)) report_info("smp.ap-timeout=%u", id);
    }
  }
  unsigned online = atomic_load(&cpus_online);
  report_info("cpus.online=%u", online);
  if ((int)online == a->cpu_count) {
    report_pass(IGN_TEST_SMP, "online=%u", online);
  } else {
    report_fail(IGN_TEST_SMP, "online=%u madt=%d", online, a->cpu_count);
  }
}
