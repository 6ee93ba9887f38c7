/* dnsprobe BPF side: time every getaddrinfo(3) call and report host, result and latency. */
#define BPF_PROG_USER
#include "bpf.h"
#include "dnsprobe.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} dns_events SEC(".maps");

/*
 * getaddrinfo(node, service, hints, res): the entry stub saves the arguments and the time;
 * the return body below pairs them with the result. Reading node at return rather than entry
 * is safe: it is the caller's buffer, still alive, and getaddrinfo has just touched it, so
 * the page is resident (a uprobe cannot fault it in).
 */
UPROBE_RET(getaddrinfo, pt_regs, DNSPROBE_GETADDRINFO_ID)
{
    struct probe_val val;
    struct dns_event *event;
    const char *node;

    if (PROBE_GET_PARMS(getaddrinfo, ctx, val, DNSPROBE_GETADDRINFO_ID) < 0)
        return 0;

    event = bpf_ringbuf_reserve(&dns_events, sizeof(*event), 0);
    if (!event)
        return 0;

    event->pid = (int)(bpf_get_current_pid_tgid() >> 32);
    event->ret = (int)PT_REGS_RC(ctx);
    event->latency_us = (bpf_ktime_get_ns() - PROBE_TS(val)) / 1000;
    bpf_get_current_comm(event->comm, sizeof(event->comm));

    node = (const char *)PROBE_PARM1(val);
    event->host[0] = '\0';
    if (node && bpf_probe_read_user_str(event->host, sizeof(event->host), node) < 0)
        event->host[0] = '\0';

    bpf_ringbuf_submit(event, 0);
    return 0;
}
