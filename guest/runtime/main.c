/* The guest's ring-3 main: gather boot information, set up interrupts, run the tests the
 * command line selects, report, and leave. Also the exception reporter (fault_main). */
#include "acpi.h"
#include "apic.h"
#include "bootinfo.h"
#include "cmdline.h"
#include "cpu.h"
#include "exit.h"
#include "guest.h"
#include "idt.h"
#include "report.h"
#include "ring0.h"
#include "serial.h"
#include "string.h"
#include "tests.h"
#include "time.h"

#define PIC1_DATA 0x21
#define PIC2_DATA 0xa1

static struct guest guest;

/* The value of `prefix` (e.g. "ign.exit=") on the command line; found = false if absent. */
static struct str option(const char* prefix, bool* found) {
  struct str v = {"", 0};
  *found = cmdline_option(&guest.boot, prefix, &v);
  return v;
}

static void parse_exit_mode(void) {
  bool found;
  struct str v = option(IGN_OPT_EXIT, &found);
  guest.exit_mode = EXIT_REBOOT;
  if (!found) return;
  if (str_eq(v, IGN_EXIT_SHUTDOWN))
    guest.exit_mode = EXIT_SHUTDOWN;
  else if (str_eq(v, IGN_EXIT_TRIPLE_FAULT))
    guest.exit_mode = EXIT_TRIPLE_FAULT;
  else if (str_eq(v, IGN_EXIT_HANG))
    guest.exit_mode = EXIT_HANG;
  else if (!str_eq(v, IGN_EXIT_REBOOT))
    report_info("unknown-exit=%.*s", (int)v.len, v.p);
}

static void run_named(struct str name) {
  for (int i = 0; i < guest_test_count; i++) {
    if (str_eq(name, guest_tests[i].name)) {
      guest_tests[i].run(&guest);
      return;
    }
  }
  char buf[64];
  size_t n = name.len < sizeof(buf) - 1 ? name.len : sizeof(buf) - 1;
  memcpy(buf, name.p, n);
  buf[n] = 0;
  report_fail(buf, "unknown-test");
}

static void run_tests(void) {
  bool found;
  struct str list = option(IGN_OPT_TESTS, &found);
  if (!found) {
    for (int i = 0; i < guest_test_count; i++) {
      if (!guest_tests[i].manual) guest_tests[i].run(&guest);
    }
    return;
  }
  size_t i = 0;
  while (i < list.len) {
    size_t start = i;
    while (i < list.len && list.p[i] != ',') i++;
    if (i > start) run_named((struct str){list.p + start, i - start});
    i++;
  }
}

/* Interrupt plumbing: the legacy PIC stays masked (a VMM may wire it to LINT0) and the local
 * APIC is enabled. Ring 3 already runs with IF=1 (see entry.S). */
static void platform_init(void) {
  acpi_discover(&guest.acpi, guest.boot.rsdp_hint);
  lapic_set_base(guest.acpi.lapic_base);
  outb(PIC1_DATA, 0xff);
  outb(PIC2_DATA, 0xff);
  lapic_enable();
  guest.bsp_apic_id = lapic_read(LAPIC_ID) >> 24;
}

void guest_main(void);
void guest_main(void) {
  idt_install();
  serial_init();
  bootinfo_read(&guest.boot, boot_entry_kind, boot_info_addr);
  report_begin(guest.boot.entry_name);
  time_init();
  parse_exit_mode();
  platform_init();
  run_tests();
  report_end();
  guest_exit(&guest);
}

/* Entered in ring 3 on its own stack after any CPU exception (isr.S: exc_common). */
void fault_main(void);
void fault_main(void) {
  const struct fault_info* f = &fault_record;
  report_fail(IGN_FAIL_EXCEPTION, "vector=%lu rip=0x%lx err=0x%lx cs=0x%lx cr2=0x%lx", f->vector,
              f->rip, f->error, f->cs, f->cr2);
  report_end();
  guest_exit(&guest);
}
