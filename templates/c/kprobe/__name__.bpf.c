/* {{name}} BPF side: report every call of kernel function {{kprobe_func}} ({{attach}}) with its first argument. */
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
 *  - arguments: PT_REGS_PARM1..6(ctx) are the function's integer/pointer arguments in order.
 *    Pointers are kernel addresses: cast and read through them with _(p->field), which
 *    CO-RE relocates for the running kernel.
 *  - return value or latency: KRETPROBE({{kprobe_func}}, pt_regs) and PT_REGS_RC(ctx), or
 *    KPROBE_RET + PROBE_GET_PARMS to see the arguments at return (see __bpf_kern.h).
 *  - kernels without CONFIG_KPROBES load this program but cannot attach it (`ebpf-probe
 *    check` says whether kprobes attach here); a tracepoint on the same path needs none.
 *  - filter: return 0 before bpf_ringbuf_reserve, e.g. on the tgid or on comm.
 *  - new field: add it to struct {{name}}_event in {{name}}.h and set it below; then print it
 *    in {{name}}.c and describe it in {{name}}.meta.
 */
KPROBE({{kprobe_func}}, pt_regs)
{
    struct {{name}}_event *event;

    event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event)
        return 0; /* buffer full: the reader is behind, drop rather than stall the kernel */

    /* Reserved memory holds an older event's bytes: zero it so unset fields and holes read 0. */
    __builtin_memset(event, 0, sizeof(*event));
    event->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
    bpf_get_current_comm(event->comm, sizeof(event->comm));
    event->value = PT_REGS_PARM1(ctx);

    bpf_ringbuf_submit(event, 0);
    return 0;
}
