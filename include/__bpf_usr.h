/* Attach macros for BPF on user-space functions (BPF_PROG_USER): uprobes and uretprobes. */
#ifndef __GOPHER_BPF_USR_H__
#define __GOPHER_BPF_USR_H__

/*
 * Each macro opens a BPF program (SEC() + function head); the probe writes the body.
 *
 * The sections are the bare "uprobe" / "uretprobe". libbpf >= 0.8 parses "uprobe/<x>" as
 * "uprobe/<binary>:<function>" and tries to auto-attach it during skeleton attach, failing
 * LOAD() for gala-gopher's old "uprobe/<func>" names. Bare sections are skipped by skeleton
 * auto-attach; the loader attaches them by symbol with UBPF_ATTACH / UBPF_RET_ATTACH /
 * UBPF_PAIR_ATTACH once it knows which binary to probe.
 */

/* UPROBE(func, type): runs at entry of user function func. Program: ubpf_<func>. */
#define UPROBE(func, type) \
    SEC("uprobe") int ubpf_##func(struct type *ctx)

/* URETPROBE(func, type): runs when func returns; PT_REGS_RC(ctx) is its return value. Program: ubpf_ret_<func>. */
#define URETPROBE(func, type) \
    SEC("uretprobe") int ubpf_ret_##func(struct type *ctx)

/*
 * UPROBE_RET(func, type, prog_id): a uprobe/uretprobe pair on func. It emits the entry
 * program __uprobe_bpf_<func>, which saves PARM1..6 and the entry time in __probe_match_map
 * under (thread, prog_id), and opens the return program __uprobe_ret_bpf_<func>, whose body
 * gets them back with PROBE_GET_PARMS(func, ctx, val, prog_id). Attach both halves with
 * UBPF_PAIR_ATTACH(probe, func, elf, "symbol", ok). prog_id: any integer, distinct per pair.
 */
#define UPROBE_RET(func, type, prog_id)                                                       \
    SEC("uprobe") int __uprobe_bpf_##func(struct type *ctx)                                  \
    {                                                                                        \
        __PROBE_MATCH_ENTRY(func, ctx, prog_id);                                             \
        return 0;                                                                            \
    }                                                                                        \
                                                                                             \
    SEC("uretprobe") int __uprobe_ret_bpf_##func(struct type *ctx)

/*
 * _(P): read the lvalue P from the probed process's memory (bpf_probe_read_user), e.g.
 * _(conn->fd) where conn is a user pointer. Yields the value, or 0 if the page is not
 * resident (uprobe programs cannot fault pages in). No CO-RE: user structs have no BTF.
 * Not for bit-fields or arrays; const/volatile are dropped from the result as in the kernel _().
 */
#define _(P)                                                                                 \
    ({                                                                                       \
        __typeof__(((void)0, (P))) __gopher_val;                                             \
        __builtin_memset(&__gopher_val, 0, sizeof(__gopher_val));                            \
        bpf_probe_read_user(&__gopher_val, sizeof(__gopher_val), &(P));                      \
        __gopher_val;                                                                        \
    })

#endif /* __GOPHER_BPF_USR_H__ */
