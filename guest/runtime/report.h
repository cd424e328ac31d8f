/* Writes the IGN-* report lines (protocol in include/ign_protocol.h) and counts results. */
#pragma once

#include "ign_protocol.h"

void report_begin(const char* entry);
void report_info(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void report_pass(const char* test, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void report_fail(const char* test, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void report_end(void);
int report_fail_count(void);
