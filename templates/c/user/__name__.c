/* {{binary}}: print one |{{table}}|pid|comm|{{value_name}}| line per event of {{attach}}. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "bpf.h"
#include "{{name}}.h"
#include "{{name}}.skel.h"
#include "elf_path.h"
#include "probe_util.h"

/*
 * What to edit next (this file loads {{name}}.bpf.c, attaches it and turns its events into lines):
 *  - a new field: add it to struct {{name}}_event in {{name}}.h and fill it in {{name}}.bpf.c,
 *    then add a conversion and its argument to the probe_print_line call in on_event, and a
 *    field group to {{name}}.meta at the same position (gala-gopher matches by position).
 *  - text from the event (like comm): copy it out, terminate it, run probe_sanitize_field,
 *    because a '|' or newline in it would split or end the record.
 *  - filtering: cheapest in {{name}}.bpf.c, before an event is reserved; filter here only
 *    on what the kernel side cannot know (a command-line option, say).
 *  - more functions: one UPROBE/URETPROBE per function in {{name}}.bpf.c, and one
 *    UBPF_ATTACH/UBPF_RET_ATTACH per program below (UBPF_PAIR_ATTACH for UPROBE_RET).
 */

/* How long a poll may block: the bound on how late SIGINT/SIGTERM is noticed. */
#define {{NAME}}_POLL_MS 100

/* The ELF probed unless -b names another, and the function in it (both from `ebpf-probe new`). */
#define {{NAME}}_DEFAULT_BINARY "{{uprobe_binary}}"
#define {{NAME}}_SYMBOL "{{uprobe_symbol}}"

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
    fprintf(out, "usage: {{binary}} [-b PATH] [-h]\n"
                 "Prints |{{table}}|<pid>|<comm>|<{{value_name}}>| for every call of " {{NAME}}_SYMBOL ".\n"
                 "  -b PATH  executable or shared library that defines " {{NAME}}_SYMBOL
                 " (default: " {{NAME}}_DEFAULT_BINARY ")\n"
                 "           a name without '/' is looked up among the libraries this program\n"
                 "           has loaded, then by libbpf (PATH for programs, lib dirs for .so files)\n"
                 "Stops on SIGINT or SIGTERM.\n");
}

int main(int argc, char **argv)
{
    const char *elf_path = {{NAME}}_DEFAULT_BINARY;
    struct ring_buffer *rb = NULL;
    char loaded_path[PATH_MAX];
    int attached = 0;
    int ret = 1;
    int opt;

    while ((opt = getopt(argc, argv, "b:h")) != -1) {
        switch (opt) {
        case 'b':
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

    /*
     * A bare name such as "libc.so.6": if this program maps that library too, the mapped file
     * is the one the rest of the system loads (same ld.so.cache, same multiarch directory),
     * which libbpf's fixed list of directories can miss. Any other bare name is left to
     * libbpf's own search rather than refused here.
     */
    if (!strchr(elf_path, '/') && resolve_loaded_lib(elf_path, loaded_path, sizeof(loaded_path)) == 0)
        elf_path = loaded_path;

    INIT_BPF_APP({{name}}, EBPF_RLIM_LIMITED);
    if (INIT_STOP_SIGNALS())
        return 1;

    /* Loads the programs; bare uprobe sections are not auto-attached, that happens below. */
    LOAD({{name}}, end);

    {{attach_macro}}({{name}}, {{name}}, elf_path, {{NAME}}_SYMBOL, attached);
    if (!attached)
        goto end;

    rb = create_rb(GET_MAP_FD({{name}}, events), on_event);
    if (!rb)
        goto end;

    /* Tells whoever started us (tests, gala-gopher logs) that calls from now on are seen. */
    fprintf(stderr, "{{name}}: ready, tracing %s in %s\n", {{NAME}}_SYMBOL, elf_path);
    if (poll_rb(rb, {{NAME}}_POLL_MS) == 0)
        ret = 0;

end:
    ring_buffer__free(rb);
    UNLOAD({{name}});
    return ret;
}
