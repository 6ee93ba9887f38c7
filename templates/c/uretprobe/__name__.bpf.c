/* {{name}} BPF side: report every return from {{uprobe_symbol}} in {{uprobe_binary}} ({{attach}}) with its return value. */
#define BPF_PROG_USER
#include "bpf.h"
#include "{{name}}.h"

char LICENSE[] SEC("license") = "GPL";

/* A ring buffer: one buffer shared by all CPUs, events in order, no per-CPU pages to size. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

/*
 * What to edit next:
 *  - signed results: value is the whole 64-bit return register, printed unsigned, so an int
 *    result of -2 shows as 18446744073709551614 (and the ABI leaves the upper half of an int
 *    result undefined). For a function returning int, store (int)PT_REGS_RC(ctx), make value
 *    __s64 in {{name}}.h and print it with %lld in {{name}}.c.
 *  - arguments: registers no longer hold them at return. Use UPROBE_RET + PROBE_GET_PARMS
 *    (entry arguments and entry time, for latency), attached with UBPF_PAIR_ATTACH in
 *    {{name}}.c, as probes/dnsprobe does for getaddrinfo.
 *  - filter: return 0 before bpf_ringbuf_reserve, e.g. on the tgid or on comm.
 *  - new field: add it to struct {{name}}_event in {{name}}.h and set it below; then print it
 *    in {{name}}.c and describe it in {{name}}.meta.
 */
URETPROBE({{name}}, pt_regs)
{
    struct {{name}}_event *event;

    event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event)
        return 0; /* buffer full: the reader is behind, drop rather than stall the caller */

    /* Reserved memory holds an older event's bytes: zero it so unset fields and holes read 0. */
    __builtin_memset(event, 0, sizeof(*event));
    event->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
    bpf_get_current_comm(event->comm, sizeof(event->comm));
    event->value = PT_REGS_RC(ctx);

    bpf_ringbuf_submit(event, 0);
    return 0;
}
