/* Installs the exception, interrupt and syscall gates (see isr.S). */
#pragma once

void idt_install(void);
