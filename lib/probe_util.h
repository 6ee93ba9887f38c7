/* Helpers for the |table|value|...| line protocol that probes print on stdout. */
#ifndef __GOPHER_PROBE_UTIL_H__
#define __GOPHER_PROBE_UTIL_H__

#include <stddef.h>

/*
 * probe_sanitize_field(s): make s safe as one protocol value, in place: '|' would split the
 * value into two and a newline would end the record early, so both (and every other control
 * character) become '_'. Names such as a process comm or a DNS host are attacker-chosen.
 */
void probe_sanitize_field(char *s);

/*
 * probe_print_line(fmt, ...): printf to stdout, then fflush. gala-gopher reads probes through
 * a pipe, where stdout is fully buffered: without the flush a record could sit in the buffer
 * until 4 KiB accumulate or the probe exits. Returns printf's result or -1 if the flush failed.
 */
int probe_print_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* __GOPHER_PROBE_UTIL_H__ */
