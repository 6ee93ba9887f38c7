/* Attach macros for kernel-side BPF (BPF_PROG_KERN): kprobes, tracepoints, raw tracepoints. */
#ifndef __GOPHER_BPF_KERN_H__
#define __GOPHER_BPF_KERN_H__

/*
 * Each macro opens a BPF program: it expands to the SEC() annotation and the function head,
 * and the probe writes the body. The section names are the ones libbpf auto-attaches, so
 * LOAD() in the loader attaches every program declared here without further code.
 * `type` is the context struct's tag without `struct`: pt_regs for kprobes,
 * bpf_raw_tracepoint_args for raw tracepoints, a trace_event_raw_* struct for tracepoints.
 * Bodies return int: a void function exits without setting R0, which the verifier rejects
 * ("R0 !read_ok"), so gala-gopher's early void bodies no longer load.
 */

/* KPROBE(func, type): runs at entry of kernel function func. Program: bpf_<func>. */
#define KPROBE(func, type) \
    SEC("kprobe/" #func) int bpf_##func(struct type *ctx)

/* KRETPROBE(func, type): runs when func returns; PT_REGS_RC(ctx) is its return value. Program: bpf_ret_<func>. */
#define KRETPROBE(func, type) \
    SEC("kretprobe/" #func) int bpf_ret_##func(struct type *ctx)

/* KRAWTRACE(tp, type): raw tracepoint tp (ctx->args[] are the tracepoint's raw arguments). Program: bpf_raw_trace_<tp>. */
#define KRAWTRACE(func, type) \
    SEC("raw_tracepoint/" #func) int bpf_raw_trace_##func(struct type *ctx)

/*
 * KTRACEPOINT(category, name, type): tracepoint category/name, e.g.
 *     KTRACEPOINT(syscalls, sys_enter_kill, trace_event_raw_sys_enter)
 * reads ctx->args[0..5]. Program: bpf_trace_<category>_<name>. Tracepoints are stable ABI
 * and, unlike kprobes, exist on kernels built without CONFIG_KPROBES.
 */
#define KTRACEPOINT(category, name, type) \
    SEC("tracepoint/" #category "/" #name) int bpf_trace_##category##_##name(struct type *ctx)

/*
 * KPROBE_RET(func, type, caller_type): a kprobe/kretprobe pair on func. It emits the entry
 * program __kprobe_bpf_<func>, which saves PARM1..6 and the entry time in __probe_match_map
 * under (thread, caller_type), and opens the return program __kprobe_ret_bpf_<func>, whose
 * body gets them back with PROBE_GET_PARMS(func, ctx, val, caller_type). caller_type is any
 * integer id, the same on both sides and distinct per pair (CTX_KERNEL/CTX_USER still work).
 */
#define KPROBE_RET(func, type, caller_type)                                                   \
    SEC("kprobe/" #func) int __kprobe_bpf_##func(struct type *ctx)                           \
    {                                                                                        \
        __PROBE_MATCH_ENTRY(func, ctx, caller_type);                                         \
        return 0;                                                                            \
    }                                                                                        \
                                                                                             \
    SEC("kretprobe/" #func) int __kprobe_ret_bpf_##func(struct type *ctx)

/*
 * _(P): read the kernel lvalue P (e.g. _(sk->sk_family), _(task->mm)) through
 * bpf_probe_read_kernel with a CO-RE relocation, so the field offset is fixed up for the
 * running kernel. Yields the value, or 0 if the read faulted. Not for bit-fields or arrays
 * (a statement expression cannot yield an array). The local's type is taken through a comma
 * expression, which drops const/volatile (struct sock_common's skc_state is volatile), so
 * the read does not write through a qualified pointer.
 */
#define _(P)                                                                                 \
    ({                                                                                       \
        __typeof__(((void)0, (P))) __gopher_val;                                             \
        __builtin_memset(&__gopher_val, 0, sizeof(__gopher_val));                            \
        bpf_core_read(&__gopher_val, sizeof(__gopher_val), &(P));                            \
        __gopher_val;                                                                        \
    })

#endif /* __GOPHER_BPF_KERN_H__ */
