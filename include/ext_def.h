/* Kernel definitions that BTF cannot carry (macros), appended to the generated vmlinux.h. */
#ifndef __GOPHER_EXT_DEF_H__
#define __GOPHER_EXT_DEF_H__

/*
 * This file is #included by vmlinux.h just before its closing #endif, so every kernel type is
 * already declared and these macros cannot rewrite the type definitions themselves; they only
 * affect probe code that comes after.
 */

/*
 * struct sock keeps its addressing fields in the embedded struct sock_common. The kernel hides
 * that with #defines in include/net/sock.h, which a BTF dump loses, so probe code written
 * against the kernel's spelling (sk->sk_family) would not compile without these.
 * Bit-field members (skc_reuse, skc_ipv6only, ...) are left out on purpose: they cannot be
 * read with bpf_probe_read and an alias would only hide that.
 */
#define sk_family        __sk_common.skc_family
#define sk_state         __sk_common.skc_state
#define sk_daddr         __sk_common.skc_daddr
#define sk_rcv_saddr     __sk_common.skc_rcv_saddr
#define sk_dport         __sk_common.skc_dport
#define sk_num           __sk_common.skc_num
#define sk_v6_daddr      __sk_common.skc_v6_daddr
#define sk_v6_rcv_saddr  __sk_common.skc_v6_rcv_saddr
#define sk_bound_dev_if  __sk_common.skc_bound_dev_if
#define sk_hash          __sk_common.skc_hash
#define sk_prot          __sk_common.skc_prot
#define sk_net           __sk_common.skc_net

/*
 * Map update flags. vmlinux.h has them as enumerators, which #ifndef cannot see, so these
 * macros are defined after the enum (harmless: same values) and also cover BTF dumps of
 * kernels where the enum was trimmed away.
 */
#ifndef BPF_ANY
#define BPF_ANY     0
#endif
#ifndef BPF_NOEXIST
#define BPF_NOEXIST 1
#endif
#ifndef BPF_EXIST
#define BPF_EXIST   2
#endif

/* Address families are plain #defines in the kernel (include/linux/socket.h), absent from BTF. */
#ifndef AF_UNIX
#define AF_UNIX     1
#endif
#ifndef AF_INET
#define AF_INET     2
#endif
#ifndef AF_INET6
#define AF_INET6    10
#endif

/* An enumerator in recent kernels' BTF, a #define (so missing) in older ones. */
#ifndef TASK_COMM_LEN
#define TASK_COMM_LEN 16
#endif

#endif /* __GOPHER_EXT_DEF_H__ */
