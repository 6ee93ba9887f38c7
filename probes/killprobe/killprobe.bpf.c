/* killprobe BPF side: report every kill(2) (caller, signal, target) through a perf buffer. */
#define BPF_PROG_KERN
#include "bpf.h"
#include "killprobe.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * A perf event array rather than a ring buffer: gala-gopher's killprobe used one, and this
 * keeps the perf-buffer path of the SDK (create_pref_buffer / poll_pb) exercised by a real
 * probe. max_entries is left 0 so libbpf sizes it to the number of CPUs.
 */
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} kill_events SEC(".maps");

/*
 * The syscall tracepoint, not gala-gopher's KPROBE(__x64_sys_kill): it needs no
 * CONFIG_KPROBES, has no per-arch wrapper name, and hands over the arguments directly
 * (args[0] = pid, args[1] = sig) instead of through the wrapper's nested pt_regs.
 */
KTRACEPOINT(syscalls, sys_enter_kill, trace_event_raw_sys_enter)
{
    struct kill_event event;

    __builtin_memset(&event, 0, sizeof(event));
    event.killer_pid = (int)(bpf_get_current_pid_tgid() >> 32);
    event.killed_pid = (int)ctx->args[0];
    event.signal = (int)ctx->args[1];
    bpf_get_current_comm(event.comm, sizeof(event.comm));

    bpf_perf_event_output(ctx, &kill_events, BPF_F_CURRENT_CPU, &event, sizeof(event));
    return 0;
}
