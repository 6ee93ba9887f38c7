/* {{binary}}: print one |{{table}}|pid|comm|{{value_name}}| line per event of {{attach}}. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bpf.h"
#include "{{name}}.h"
#include "{{name}}.skel.h"
#include "probe_util.h"

/*
 * What to edit next (this file loads {{name}}.bpf.c and turns its events into lines):
 *  - a new field: add it to struct {{name}}_event in {{name}}.h and fill it in {{name}}.bpf.c,
 *    then add a conversion and its argument to the probe_print_line call in on_event, and a
 *    field group to {{name}}.meta at the same position (gala-gopher matches by position).
 *  - text from the event (like comm): copy it out, terminate it, run probe_sanitize_field,
 *    because a '|' or newline in it would split or end the record.
 *  - filtering: cheapest in {{name}}.bpf.c, before an event is reserved; filter here only
 *    on what the kernel side cannot know (a command-line option, say).
 */

/* How long a poll may block: the bound on how late SIGINT/SIGTERM is noticed. */
#define {{NAME}}_POLL_MS 100

static int on_event(void *ctx, void *data, size_t size)
{
    const struct {{name}}_event *event = data;
    char comm[{{NAME}}_COMM_LEN + 1];

    (void)ctx;
    if (size < sizeof(*event))
        return 0;
    /* Ring buffer data is mapped read-only, and must be terminated before use anyway. */
    memcpy(comm, event->comm, {{NAME}}_COMM_LEN);
    comm[{{NAME}}_COMM_LEN] = '\0';
    probe_sanitize_field(comm);
    /* Casts: __u64 is unsigned long on some 64-bit ABIs, so %llu needs one to stay warning-free. */
    probe_print_line("|{{table}}|%u|%s|%llu|\n", (unsigned int)event->pid, comm,
                     (unsigned long long)event->value);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: {{binary}} [-h]\n"
                 "Prints |{{table}}|<pid>|<comm>|<{{value_name}}>| for every event.\n"
                 "Stops on SIGINT or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    struct ring_buffer *rb = NULL;
    int ret = 1;
    int opt;

    while ((opt = getopt(argc, argv, "h")) != -1) {
        switch (opt) {
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }

    INIT_BPF_APP({{name}}, EBPF_RLIM_LIMITED);
    if (INIT_STOP_SIGNALS())
        return 1;

    /* Loads and attaches every program of {{name}}.bpf.c: its section names say where. */
    LOAD({{name}}, end);

    rb = create_rb(GET_MAP_FD({{name}}, events), on_event);
    if (!rb)
        goto end;

    /* Tells whoever started us (tests, gala-gopher logs) that events from now on are seen. */
    fprintf(stderr, "{{name}}: ready, printing |{{table}}| lines\n");
    if (poll_rb(rb, {{NAME}}_POLL_MS) == 0)
        ret = 0;

end:
    ring_buffer__free(rb);
    UNLOAD({{name}});
    return ret;
}
