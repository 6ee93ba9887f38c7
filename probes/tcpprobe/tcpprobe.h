/* tcpprobe's event record, written by the BPF side (tcpprobe.bpf.c) and mirrored by src/main.rs (`TcpLinkEvent`). */
#ifndef __TCPPROBE_H__
#define __TCPPROBE_H__

/* Not TASK_COMM_LEN: the Rust mirror must know the exact size. */
#define TCPPROBE_COMM_LEN 16

/* Who opened the connection, as the probe saw it happen. */
#define TCPPROBE_ROLE_UNKNOWN 0 /* open before the probe started: only its close was seen */
#define TCPPROBE_ROLE_CLIENT  1 /* connect(): CLOSE -> SYN_SENT */
#define TCPPROBE_ROLE_SERVER  2 /* accepted: LISTEN -> SYN_RECV (or SYN_RECV -> ESTABLISHED) */

/*
 * One TCP connection, reported when its socket reaches TCP_CLOSE. Fixed-width fields, largest first, no
 * implicit padding (sizeof = 96): src/main.rs declares the same layout with #[repr(C)] and checks the size.
 */
struct tcp_link_event {
    __u64 rx_bytes;      /* payload bytes received: tcp_sock.bytes_received without the peer's FIN */
    __u64 acked_bytes;   /* payload bytes the peer acknowledged: tcp_sock.bytes_acked without our SYN and FIN */
    __u64 lifetime_ns;   /* first seen opening -> TCP_CLOSE; 0 when the opening was not seen */
    __u32 tgid;          /* owner process; 0 when no transition ran in a process holding the socket */
    __u32 srtt_us;       /* smoothed RTT in microseconds (tcp_sock.srtt_us >> 3) */
    __u32 retrans;       /* tcp_sock.total_retrans: segments retransmitted */
    __u16 family;        /* AF_INET or AF_INET6 */
    __u16 sport;         /* local port, host byte order */
    __u16 dport;         /* remote port, host byte order */
    __u8 role;           /* TCPPROBE_ROLE_* */
    __u8 pad[5];
    __u8 saddr[16];      /* local address as the kernel stores it (network order); IPv4 in the first 4 bytes */
    __u8 daddr[16];      /* remote address, same encoding */
    char comm[TCPPROBE_COMM_LEN]; /* owner's comm; empty when tgid is 0 */
};

#endif /* __TCPPROBE_H__ */
