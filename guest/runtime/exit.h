/* Leaving the VM the way ign.exit asked: i8042 reset, ACPI S5, triple fault, or spinning. */
#pragma once

#include "guest.h"

__attribute__((noreturn)) void guest_exit(const struct guest* g);
