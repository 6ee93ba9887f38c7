/* Line-protocol helpers shared by every probe binary (see probe_util.h). */
#include <stdarg.h>
#include <stdio.h>

#include "probe_util.h"

void probe_sanitize_field(char *s)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '|' || c < 0x20 || c == 0x7f)
            *s = '_';
    }
}

int probe_print_line(const char *fmt, ...)
{
    va_list args;
    int n;

    va_start(args, fmt);
    n = vprintf(fmt, args);
    va_end(args);
    if (fflush(stdout) == EOF)
        return -1;
    return n;
}
