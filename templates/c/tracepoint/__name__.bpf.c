/* {{name}} BPF side: report every hit of tracepoint {{tp_category}}/{{tp_name}} ({{attach}}) with the CPU it fired on. */
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
 *  - read the tracepoint's own fields: replace trace_entry (the common header every
 *    tracepoint record starts with, so it fits any tracepoint) by the record's struct in
 *    vmlinux.h, usually trace_event_raw_{{tp_name}} (trace_event_raw_sys_enter for syscalls,
 *    whose args[] are the arguments); the fields are listed in
 *    /sys/kernel/tracing/events/{{tp_category}}/{{tp_name}}/format.
 *  - filter: return 0 before bpf_ringbuf_reserve, e.g. on the tgid or on comm.
 *  - new field: add it to struct {{name}}_event in {{name}}.h and set it below; then print it
 *    in {{name}}.c and describe it in {{name}}.meta.
 */
KTRACEPOINT({{tp_category}}, {{tp_name}}, trace_entry)
{
    struct {{name}}_event *event;

    event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
    if (!event)
        return 0; /* buffer full: the reader is behind, drop rather than stall the kernel */

    /* Reserved memory holds an older event's bytes: zero it so unset fields and holes read 0. */
    __builtin_memset(event, 0, sizeof(*event));
    event->pid = (__u32)(bpf_get_current_pid_tgid() >> 32);
    bpf_get_current_comm(event->comm, sizeof(event->comm));
    event->value = bpf_get_smp_processor_id();

    bpf_ringbuf_submit(event, 0);
    return 0;
}
