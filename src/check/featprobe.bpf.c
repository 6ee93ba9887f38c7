// featprobe.bpf.c: one tiny BPF program per attach kind, used by `ebpf-probe --check` to test what the kernel really supports.
// No vmlinux.h on purpose: the check must work before any kernel header has been generated.
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

// Index of each kind's counter in hits[]; must match the K_* enum in featprobe.c.
#define K_KPROBE 0
#define K_FENTRY 1
#define K_TP_BTF 2
#define K_TRACEPOINT 3
#define K_RAW_TP 4
#define K_UPROBE 5
#define K_URETPROBE 6
#define K_RINGBUF 7

// Set by userland before load: only events from the helper process count,
// so unrelated system activity cannot make a broken kind look "ok".
const volatile __u32 target_tgid = 0;

// One counter per kind (.bss, read by userland through the skeleton's mmap).
__u64 hits[8] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

static __always_inline void hit(int k)
{
	if ((bpf_get_current_pid_tgid() >> 32) == target_tgid)
		__sync_fetch_and_add(&hits[k], 1);
}

// do_sys_openat2 exists on every kernel since 5.6 and is reached by open(2).
SEC("kprobe/do_sys_openat2")
int probe_kprobe(void *ctx) { hit(K_KPROBE); return 0; }

// No arguments are read, so the no-arg BPF_PROG form is valid whatever the signature.
SEC("fentry/do_sys_openat2")
int BPF_PROG(probe_fentry) { hit(K_FENTRY); return 0; }

SEC("tp_btf/sys_enter")
int BPF_PROG(probe_tp_btf) { hit(K_TP_BTF); return 0; }

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx) { hit(K_TRACEPOINT); return 0; }

SEC("raw_tracepoint/sys_enter")
int probe_raw_tp(void *ctx) { hit(K_RAW_TP); return 0; }

// Attached by userland to featprobe_uprobe_target() in the helper binary itself.
SEC("uprobe")
int probe_uprobe(void *ctx) { hit(K_UPROBE); return 0; }

SEC("uretprobe")
int probe_uretprobe(void *ctx) { hit(K_URETPROBE); return 0; }

// Raw tracepoint rather than a tracefs tracepoint, so the ring buffer verdict
// does not depend on tracefs being mounted.
SEC("raw_tracepoint/sys_enter")
int probe_ringbuf(void *ctx)
{
	__u32 *rec;

	if ((bpf_get_current_pid_tgid() >> 32) != target_tgid)
		return 0;
	rec = bpf_ringbuf_reserve(&events, sizeof(*rec), 0);
	if (!rec)
		return 0; /* buffer full: earlier records already prove it works */
	*rec = target_tgid;
	bpf_ringbuf_submit(rec, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
