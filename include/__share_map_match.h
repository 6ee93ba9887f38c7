/* Entry/return parameter matching: hands a function's arguments and entry time to its return probe. */
#ifndef __GOPHER_SHARE_MAP_MATCH_H__
#define __GOPHER_SHARE_MAP_MATCH_H__

/*
 * A return probe only sees the return value; the arguments are gone by then. KPROBE_RET and
 * UPROBE_RET therefore generate an entry stub that saves PARM1..6 and a timestamp here, and the
 * return body takes them back with PROBE_GET_PARMS.
 *
 * Key: the calling thread (pid_tgid) plus the pair's id. In kernel context where there is no
 * task (pid 0: the idle task, one per CPU) the CPU number is used instead so CPUs do not
 * overwrite each other. Limitation: a pair whose function recurses, or two pairs sharing an
 * id that nest, overwrite one another's entry; give every pair its own id.
 *
 * The map is an LRU hash so entries whose return never fires (thread killed, longjmp, detach
 * between entry and return) age out instead of filling the map. It is preallocated, which
 * tracing programs on older kernels require. Override the size by defining
 * PROBE_MATCH_MAP_MAX_ENTRIES before including bpf.h.
 */

#ifndef PROBE_MATCH_MAP_MAX_ENTRIES
#define PROBE_MATCH_MAP_MAX_ENTRIES 10240
#endif

/* Tags kept for sources written against gala-gopher, where they chose pid vs cpu keys. */
#define CTX_USER   0
#define CTX_KERNEL 1

struct __probe_key {
    __u64 owner;     /* pid_tgid, or the CPU number when is_cpu is set */
    __u32 prog_id;   /* the pair's id: KPROBE_RET caller_type / UPROBE_RET prog_id */
    __u32 is_cpu;    /* explicit field, so the key has no padding bytes to hash */
};

/* What the entry stub saved; also the type of a return body's local (see PROBE_GET_PARMS). */
struct probe_val {
    __u64 parms[6];
    __u64 ts;        /* bpf_ktime_get_ns() at entry */
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __type(key, struct __probe_key);
    __type(value, struct probe_val);
    __uint(max_entries, PROBE_MATCH_MAP_MAX_ENTRIES);
} __probe_match_map SEC(".maps");

static __always_inline void __probe_match_key(struct __probe_key *key, __u32 prog_id)
{
    __u64 pid_tgid = bpf_get_current_pid_tgid();

    if ((__u32)pid_tgid == 0) {
        key->owner = bpf_get_smp_processor_id();
        key->is_cpu = 1;
    } else {
        key->owner = pid_tgid;
        key->is_cpu = 0;
    }
    key->prog_id = prog_id;
}

/* Entry side: called by the stubs KPROBE_RET / UPROBE_RET generate. */
static __always_inline int __probe_match_save(struct pt_regs *regs, __u32 prog_id)
{
    struct __probe_key key;
    struct probe_val val;

    __probe_match_key(&key, prog_id);
    val.parms[0] = (__u64)PT_REGS_PARM1(regs);
    val.parms[1] = (__u64)PT_REGS_PARM2(regs);
    val.parms[2] = (__u64)PT_REGS_PARM3(regs);
    val.parms[3] = (__u64)PT_REGS_PARM4(regs);
    val.parms[4] = (__u64)PT_REGS_PARM5(regs);
    val.parms[5] = (__u64)PT_REGS_PARM6(regs);
    val.ts = bpf_ktime_get_ns();
    return bpf_map_update_elem(&__probe_match_map, &key, &val, BPF_ANY);
}

/* Return side: copy the entry out and delete it, so the next call starts clean. */
static __always_inline int __probe_match_take(__u32 prog_id, struct probe_val *out)
{
    struct __probe_key key;
    struct probe_val *val;

    __probe_match_key(&key, prog_id);
    val = bpf_map_lookup_elem(&__probe_match_map, &key);
    if (!val) {
        __builtin_memset(out, 0, sizeof(*out));
        return -1;
    }
    __builtin_memcpy(out, val, sizeof(*out));
    bpf_map_delete_elem(&__probe_match_map, &key);
    return 0;
}

#ifdef GOPHER_DEBUG
#define __PROBE_MATCH_DEBUG(fmt, ...) bpf_printk(fmt, ##__VA_ARGS__)
#else
#define __PROBE_MATCH_DEBUG(fmt, ...) do { } while (0)
#endif

/*
 * PROBE_GET_PARMS(func, ctx, probe_val, caller_or_prog_id)
 *   Inside a KPROBE_RET / UPROBE_RET return body: fetch and delete what the entry stub saved
 *   for this thread and id into probe_val, a `struct probe_val` local the body declares.
 *   Evaluates to 0 when an entry was found and to -1 when not (the return fired without a
 *   matching entry, e.g. the probe attached while the call was in flight); probe_val is then
 *   zeroed. func only names the probe in GOPHER_DEBUG trace output; ctx is accepted for
 *   gala-gopher source compatibility.
 *
 *       UPROBE_RET(getaddrinfo, pt_regs, 1)
 *       {
 *           struct probe_val val;
 *           if (PROBE_GET_PARMS(getaddrinfo, ctx, val, 1) < 0)
 *               return 0;
 *           const char *node = (const char *)PROBE_PARM1(val);
 *           __u64 took_ns = bpf_ktime_get_ns() - PROBE_TS(val);
 *           ...
 */
#define PROBE_GET_PARMS(func, ctx, probe_val, caller_or_prog_id)                              \
    ({                                                                                       \
        int __probe_ret;                                                                     \
        (void)(ctx);                                                                         \
        __probe_ret = __probe_match_take((__u32)(caller_or_prog_id), &(probe_val));          \
        if (__probe_ret < 0)                                                                 \
            __PROBE_MATCH_DEBUG("PROBE_GET_PARMS[" #func "]: no entry saved");              \
        __probe_ret;                                                                         \
    })

/* PROBE_PARMn(probe_val): the n-th argument the entry saw, as __u64 (cast it to its real type). */
#define PROBE_PARM1(probe_val) ((probe_val).parms[0])
#define PROBE_PARM2(probe_val) ((probe_val).parms[1])
#define PROBE_PARM3(probe_val) ((probe_val).parms[2])
#define PROBE_PARM4(probe_val) ((probe_val).parms[3])
#define PROBE_PARM5(probe_val) ((probe_val).parms[4])
#define PROBE_PARM6(probe_val) ((probe_val).parms[5])

/* PROBE_TS(probe_val): bpf_ktime_get_ns() at entry; subtract from "now" for the call latency. */
#define PROBE_TS(probe_val) ((probe_val).ts)

/* Shared by the KPROBE_RET / UPROBE_RET entry stubs: save, and say so in debug builds if full. */
#define __PROBE_MATCH_ENTRY(func, ctx, id)                                                   \
    do {                                                                                     \
        if (__probe_match_save((struct pt_regs *)(ctx), (__u32)(id)) < 0)                    \
            __PROBE_MATCH_DEBUG("probe entry[" #func "]: saving parameters failed");        \
    } while (0)

#endif /* __GOPHER_SHARE_MAP_MATCH_H__ */
