/* dnsprobe: print one |dns_lookup|pid|comm|host|ret|latency_us| line per getaddrinfo(3) call on the system. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bpf.h"
#include "dnsprobe.h"
#include "dnsprobe.skel.h"
#include "elf_path.h"
#include "probe_util.h"

/* How long a poll may block: the bound on how late SIGINT/SIGTERM is noticed. */
#define DNSPROBE_POLL_MS 100

static int on_dns_event(void *ctx, void *data, size_t size)
{
    const struct dns_event *event = data;
    char comm[DNSPROBE_COMM_LEN + 1];
    char host[DNSPROBE_HOST_LEN + 1];

    (void)ctx;
    if (size < sizeof(*event))
        return 0;
    /* Ring buffer data is mapped read-only, and must be terminated before use anyway. */
    memcpy(comm, event->comm, DNSPROBE_COMM_LEN);
    comm[DNSPROBE_COMM_LEN] = '\0';
    memcpy(host, event->host, DNSPROBE_HOST_LEN);
    host[DNSPROBE_HOST_LEN] = '\0';
    probe_sanitize_field(comm);
    probe_sanitize_field(host);
    probe_print_line("|dns_lookup|%d|%s|%s|%d|%llu|\n", event->pid, comm, host, event->ret,
                     event->latency_us);
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: dnsprobe [-l LIBC_PATH] [-h]\n"
                 "Prints |dns_lookup|<pid>|<comm>|<host>|<ret>|<latency_us>| for every getaddrinfo(3).\n"
                 "  -l PATH  ELF that provides getaddrinfo (default: the libc.so.6 this program loaded)\n"
                 "Stops on SIGINT or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    struct ring_buffer *rb = NULL;
    char libc_path[PATH_MAX];
    const char *elf_path = NULL;
    int attached = 0;
    int ret = 1;
    int opt;
    int err;

    while ((opt = getopt(argc, argv, "l:h")) != -1) {
        switch (opt) {
        case 'l':
            elf_path = optarg;
            break;
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

    if (!elf_path) {
        /* This binary links libc dynamically, so the libc it mapped is the system's libc. */
        err = resolve_loaded_lib("libc.so.6", libc_path, sizeof(libc_path));
        if (err) {
            fprintf(stderr, "dnsprobe: cannot find libc.so.6 in /proc/self/maps: %s; pass -l PATH\n",
                    strerror(-err));
            return 1;
        }
        elf_path = libc_path;
    }

    INIT_BPF_APP(dnsprobe, EBPF_RLIM_LIMITED);
    if (INIT_STOP_SIGNALS())
        return 1;

    LOAD(dnsprobe, end);

    UBPF_PAIR_ATTACH(dnsprobe, getaddrinfo, elf_path, "getaddrinfo", attached);
    if (!attached)
        goto end;

    rb = create_rb(GET_MAP_FD(dnsprobe, dns_events), on_dns_event);
    if (!rb)
        goto end;

    /* Tells whoever started us (tests, gala-gopher logs) that lookups from now on are seen. */
    fprintf(stderr, "dnsprobe: ready, tracing getaddrinfo() in %s\n", elf_path);
    if (poll_rb(rb, DNSPROBE_POLL_MS) == 0)
        ret = 0;

end:
    ring_buffer__free(rb);
    UNLOAD(dnsprobe);
    return ret;
}
