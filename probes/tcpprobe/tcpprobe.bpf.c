/* tcpprobe BPF side: follow TCP sockets through their state changes and report each one when it closes. */
#define BPF_PROG_KERN
#include "bpf.h"
#include "tcpprobe.h"

char LICENSE[] SEC("license") = "GPL";

/* What is known about a socket between its opening and its TCP_CLOSE. */
struct tcp_link_owner {
    __u64 start_ns;  /* 0: opened before the probe started */
    __u32 tgid;      /* 0: not yet seen in its owner's context */
    __u8 role;       /* TCPPROBE_ROLE_* */
    __u8 pad[3];
    char comm[TCPPROBE_COMM_LEN];
};

/*
 * Keyed by the socket's address (the tracepoint's skaddr), which is unique while the socket lives; the
 * entry is deleted at TCP_CLOSE. LRU so that sockets whose close is never seen (the map filling up on a
 * busy server, a missed event) push out the oldest entries instead of stopping new ones from being tracked.
 */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, __u64);
    __type(value, struct tcp_link_owner);
} tcp_links SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} tcp_link_events SEC(".maps");

/*
 * Whether this state change runs in the context of a task that holds the socket (lock_sock: connect(),
 * close(), shutdown(), and the backlog those replay on release_sock). Softirq processing (the handshake's
 * last ACK, an incoming FIN or RST, timers) only changes state while nobody owns the socket, and then the
 * current task is whoever the softirq interrupted: on loopback, typically the peer process.
 */
static __always_inline int in_owner_context(struct sock *sk)
{
    return BPF_CORE_READ(sk, sk_lock.owned) != 0;
}

static __always_inline void learn_owner(struct tcp_link_owner *owner, struct sock *sk)
{
    __u32 tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);

    if (owner->tgid != 0 || tgid == 0 || !in_owner_context(sk))
        return;
    owner->tgid = tgid;
    bpf_get_current_comm(owner->comm, sizeof(owner->comm));
}

/*
 * Payload bytes received and acknowledged. The kernel counts sequence space (RFC 4898 sums of RcvNxt and
 * SndUna changes), so bytes_received includes the peer's FIN and bytes_acked includes our SYN (active open)
 * and our FIN once acknowledged; each takes one sequence number and carries no data.
 */
static __always_inline void payload_bytes(struct tcp_sock *tp, int oldstate, struct tcp_link_event *event)
{
    struct sock *sk = (struct sock *)tp;
    __u64 rx = BPF_CORE_READ(tp, bytes_received);
    __u64 acked = BPF_CORE_READ(tp, bytes_acked);
    __u64 flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
    int fin_sent = oldstate == TCP_FIN_WAIT1 || oldstate == TCP_FIN_WAIT2 || oldstate == TCP_CLOSING ||
                   oldstate == TCP_LAST_ACK;

    /* tcp_fin() sets SOCK_DONE right after rcv_nxt moved past the FIN (tcp_disconnect clears both). */
    if ((flags & (1ULL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) && rx > 0)
        rx--;
    /* Nothing can be acknowledged before the SYN: an active open that got an answer counted it. */
    if (event->role == TCPPROBE_ROLE_CLIENT && acked > 0)
        acked--;
    /* The states after close()/shutdown() sent our FIN; the kernel itself takes snd_una == write_seq as
     * "FIN acknowledged" there (tcp_rcv_state_process). */
    if (fin_sent && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq) && acked > 0)
        acked--;
    event->rx_bytes = rx;
    event->acked_bytes = acked;
}

static __always_inline void report_close(struct trace_event_raw_inet_sock_set_state *ctx, __u64 key)
{
    struct tcp_sock *tp = (struct tcp_sock *)ctx->skaddr;
    struct tcp_link_owner *owner;
    struct tcp_link_event *event;

    owner = bpf_map_lookup_elem(&tcp_links, &key);
    event = bpf_ringbuf_reserve(&tcp_link_events, sizeof(*event), 0);
    if (!event)
        goto out;
    __builtin_memset(event, 0, sizeof(*event));

    if (owner) {
        /* A socket aborted by close() (RST) reaches TCP_CLOSE in its owner's context: last chance. */
        learn_owner(owner, (struct sock *)tp);
        event->tgid = owner->tgid;
        event->role = owner->role;
        __builtin_memcpy(event->comm, owner->comm, sizeof(event->comm));
        if (owner->start_ns)
            event->lifetime_ns = bpf_ktime_get_ns() - owner->start_ns;
    } else if (in_owner_context((struct sock *)tp)) {
        event->tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
        if (event->tgid)
            bpf_get_current_comm(event->comm, sizeof(event->comm));
    }

    payload_bytes(tp, ctx->oldstate, event);
    event->srtt_us = BPF_CORE_READ(tp, srtt_us) >> 3;
    event->retrans = BPF_CORE_READ(tp, total_retrans);

    /* sport and dport are already in host order in this tracepoint (ntohs in TP_fast_assign). */
    event->family = ctx->family;
    event->sport = ctx->sport;
    event->dport = ctx->dport;
    /* Copied with a helper: clang turns a memcpy from ctx into an offset ctx pointer, which the verifier rejects. */
    if (ctx->family == AF_INET6) {
        bpf_probe_read_kernel(event->saddr, sizeof(ctx->saddr_v6), ctx->saddr_v6);
        bpf_probe_read_kernel(event->daddr, sizeof(ctx->daddr_v6), ctx->daddr_v6);
    } else {
        bpf_probe_read_kernel(event->saddr, sizeof(ctx->saddr), ctx->saddr);
        bpf_probe_read_kernel(event->daddr, sizeof(ctx->daddr), ctx->daddr);
    }
    bpf_ringbuf_submit(event, 0);
out:
    bpf_map_delete_elem(&tcp_links, &key);
}

/*
 * Every TCP state change: inet_sk_set_state() fires it for TCP, SCTP and MPTCP sockets, in process context
 * (connect, close) as well as in softirq (handshake completion, FIN/RST received, TIME_WAIT).
 */
KTRACEPOINT(sock, inet_sock_set_state, trace_event_raw_inet_sock_set_state)
{
    __u64 key = (__u64)ctx->skaddr;
    int oldstate = ctx->oldstate;
    int newstate = ctx->newstate;
    struct tcp_link_owner *owner;

    if (ctx->protocol != IPPROTO_TCP)
        return 0;

    /* A listener opening or closing is not a connection. */
    if (newstate == TCP_LISTEN || (oldstate == TCP_LISTEN && newstate == TCP_CLOSE))
        return 0;

    if (newstate == TCP_CLOSE) {
        report_close(ctx, key);
        return 0;
    }

    if (newstate == TCP_SYN_SENT) {
        /* connect(): process context, the caller owns the socket. A reused socket starts over. */
        struct tcp_link_owner client = { .start_ns = bpf_ktime_get_ns(), .role = TCPPROBE_ROLE_CLIENT };

        client.tgid = (__u32)(bpf_get_current_pid_tgid() >> 32);
        bpf_get_current_comm(client.comm, sizeof(client.comm));
        bpf_map_update_elem(&tcp_links, &key, &client, BPF_ANY);
        return 0;
    }

    owner = bpf_map_lookup_elem(&tcp_links, &key);
    if (!owner) {
        /*
         * The child of a listener: cloned from it (LISTEN -> SYN_RECV) when the handshake's last ACK or a
         * Fast Open SYN arrives, in softirq, so the current task is not the process that will accept() it;
         * SYN_RECV -> ESTABLISHED covers a clone that happened just before the probe attached. A client's
         * own SYN_RECV (simultaneous open) already has its entry from SYN_SENT. BPF_NOEXIST: another CPU
         * may have created the entry in the meantime.
         */
        struct tcp_link_owner fresh = {};

        if ((oldstate == TCP_LISTEN && newstate == TCP_SYN_RECV) ||
            (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED)) {
            fresh.start_ns = bpf_ktime_get_ns();
            fresh.role = TCPPROBE_ROLE_SERVER;
        } else {
            /* Opened before the probe started: keep what the rest of its life tells. */
            fresh.role = TCPPROBE_ROLE_UNKNOWN;
        }
        bpf_map_update_elem(&tcp_links, &key, &fresh, BPF_NOEXIST);
        owner = bpf_map_lookup_elem(&tcp_links, &key);
        if (!owner)
            return 0;
    }
    /* The accepting process shows itself on the first state change it causes (close, shutdown). */
    learn_owner(owner, (struct sock *)ctx->skaddr);
    return 0;
}
