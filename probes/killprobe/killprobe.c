/* killprobe: print one |kill_info|killer_pid|signal|killed_pid|comm| line per kill(2) on the system. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "bpf.h"
#include "killprobe.h"
#include "killprobe.skel.h"
#include "probe_util.h"

/* How long a poll may block: the bound on how late SIGINT/SIGTERM is noticed. */
#define KILLPROBE_POLL_MS 100

static void on_kill_event(void *ctx, int cpu, void *data, __u32 size)
{
    const struct kill_event *event = data;
    char comm[KILLPROBE_COMM_LEN + 1];

    (void)ctx;
    (void)cpu;
    if (size < sizeof(*event))
        return;
    /* Copy out: the kernel terminates comm, but this side should not have to trust that. */
    memcpy(comm, event->comm, KILLPROBE_COMM_LEN);
    comm[KILLPROBE_COMM_LEN] = '\0';
    probe_sanitize_field(comm);
    probe_print_line("|kill_info|%d|%d|%d|%s|\n", event->killer_pid, event->signal,
                     event->killed_pid, comm);
}

static void on_lost_events(void *ctx, int cpu, __u64 count)
{
    (void)ctx;
    fprintf(stderr, "killprobe: lost %llu events on CPU %d\n", (unsigned long long)count, cpu);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: killprobe [-h]\n"
                 "Prints |kill_info|<killer_pid>|<signal>|<killed_pid>|<comm>| for every kill(2).\n"
                 "Stops on SIGINT or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    struct perf_buffer *pb = NULL;
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

    INIT_BPF_APP(killprobe, EBPF_RLIM_LIMITED);
    if (INIT_STOP_SIGNALS())
        return 1;

    LOAD(killprobe, end);

    pb = create_pref_buffer(GET_MAP_FD(killprobe, kill_events), on_kill_event, on_lost_events);
    if (!pb)
        goto end;

    /* Tells whoever started us (tests, gala-gopher logs) that events from now on are seen. */
    fprintf(stderr, "killprobe: ready, reporting kill(2) calls\n");
    if (poll_pb(pb, KILLPROBE_POLL_MS) == 0)
        ret = 0;

end:
    perf_buffer__free(pb);
    UNLOAD(killprobe);
    return ret;
}
