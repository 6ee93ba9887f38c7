/* {{name}} BPF side: report every hit of raw tracepoint {{raw_tp}} ({{attach}}) with its first argument. */
#define BPF_PROG_KERN
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
 *  - arguments: ctx->args[i] are the raw arguments of the tracepoint's TP_PROTO, in order
 *    (search the kernel's include/trace/events/ for {{raw_tp}}). Pointers are kernel
 *    addresses: cast and read through them with _(p->field), e.g.
 *        struct task_struct *task = (struct task_struct *)ctx->args[0];
 *        event->value = _(task->tgid);
 *  - filter: return 0 before bpf_ringbuf_reserve, e.g. on the tgid or on comm.
 *  - new field: add it to struct {{name}}_event in {{name}}.h and set it below; then print it
 *    in {{name}}.c and describe it in {{name}}.meta.
 */
KRAWTRACE({{raw_tp}}, bpf_raw_tracepoint_args)
{
    struct {{name}}_event *event;

    event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event)
        return 0; /* buffer full: the reader is behind, drop rather than stall the kernel */

    /* Reserved memory holds an older event's bytes: zero it so unset fields and holes read 0. */
    __builtin_memset(event, 0, sizeof(*event));
    event->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
    bpf_get_current_comm(event->comm, sizeof(event->comm));
    event->value = ctx->args[0];

    bpf_ringbuf_submit(event, 0);
    return 0;
}
