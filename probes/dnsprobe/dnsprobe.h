/* dnsprobe's event record and ids, shared by the BPF side (dnsprobe.bpf.c) and the loader (dnsprobe.c). */
#ifndef __DNSPROBE_H__
#define __DNSPROBE_H__

#define DNSPROBE_COMM_LEN 16
/* Longest host name reported; longer names are cut (a DNS name is at most 253 characters,
 * but 128 keeps the event small and still identifies the name). */
#define DNSPROBE_HOST_LEN 128

/* UPROBE_RET / PROBE_GET_PARMS id of the getaddrinfo pair (unique per pair in this object). */
#define DNSPROBE_GETADDRINFO_ID 1

/* One completed getaddrinfo(3) call. */
struct dns_event {
    int pid;                          /* tgid of the caller */
    int ret;                          /* getaddrinfo's return: 0 or an EAI_* code (negative) */
    unsigned long long latency_us;    /* entry to return */
    char comm[DNSPROBE_COMM_LEN];     /* caller's comm */
    char host[DNSPROBE_HOST_LEN];     /* node argument; empty when NULL (service-only lookup) */
};

#endif /* __DNSPROBE_H__ */
