// featprobe.c: `ebpf-probe --check` helper; loads, attaches and fires one tiny BPF program per attach kind and prints "<kind>\t<ok|no>\t<detail>" lines.
// Feature probes (bpftool feature probe) can be wrong, so every kind is really exercised end to end.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include "featprobe.skel.h"

// ebpf-probe generates the skeleton with `name featprobe_bpf`: struct featprobe_bpf, featprobe_bpf__open().

// Order of the output lines; indices must match the K_* defines in featprobe.bpf.c.
enum { K_KPROBE, K_FENTRY, K_TP_BTF, K_TRACEPOINT, K_RAW_TP, K_UPROBE, K_URETPROBE, K_RINGBUF, K_N };
static const char *const kind_names[K_N] = { "kprobe", "fentry", "tp_btf", "tracepoint",
	"raw_tracepoint", "uprobe", "uretprobe", "ringbuf" };
static const char *const prog_names[K_N] = { "probe_kprobe", "probe_fentry", "probe_tp_btf",
	"probe_tracepoint", "probe_raw_tp", "probe_uprobe", "probe_uretprobe", "probe_ringbuf" };

// Uprobe target: global (so it is in .symtab for libbpf's name lookup), noinline and with a
// visible side effect so the compiler can neither inline nor drop the call.
volatile int featprobe_sink;
__attribute__((noinline, used)) int featprobe_uprobe_target(int x)
{
	featprobe_sink += x;
	__asm__ volatile("" ::: "memory");
	return featprobe_sink;
}

// libbpf is silent unless FEATPROBE_VERBOSE is set, keeping stdout/stderr machine-readable.
static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	return getenv("FEATPROBE_VERBOSE") ? vfprintf(stderr, fmt, ap) : 0;
}

// Symbolic errno names (strerrorname_np is glibc >= 2.32 only); 524 is the kernel-internal ENOTSUPP.
static const char *errno_name(int e)
{
	switch (e) {
	case EPERM: return "EPERM";	case ENOENT: return "ENOENT";	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";	case EIO: return "EIO";		case E2BIG: return "E2BIG";
	case EBADF: return "EBADF";	case EAGAIN: return "EAGAIN";	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";	case EFAULT: return "EFAULT";	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";	case ENODEV: return "ENODEV";	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";	case ENOSYS: return "ENOSYS";	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENOEXEC: return "ENOEXEC";	case 524: return "ENOTSUPP";
	}
	return "E?";
}

static int ringbuf_records;
static int on_record(void *ctx, void *data, size_t size)
{
	(void)ctx; (void)data; (void)size;
	ringbuf_records++;
	return 0;
}

// Make the event each program hooks happen in this process.
static void trigger(int k)
{
	int fd;

	switch (k) {
	case K_KPROBE: case K_FENTRY: /* open(2) -> do_sys_openat2 */
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			close(fd);
		break;
	case K_UPROBE: case K_URETPROBE:
		featprobe_uprobe_target(1);
		break;
	default: /* raw syscall: hits sys_enter and syscalls/sys_enter_getppid */
		syscall(SYS_getppid);
	}
}

static int path_exists(const char *p) { return access(p, F_OK) == 0; }

// One independent trial: fresh skeleton with only this kind's program loaded, so a
// failure (or a missing map type) of one kind cannot affect another.
static int trial(int k, const char *exe, char *detail, size_t len)
{
	struct featprobe_bpf *skel;
	struct bpf_program *prog;
	struct bpf_link *link = NULL;
	struct ring_buffer *rb = NULL;
	const char *stage;
	int err, i, ok = 0;
	__u64 fired;

	skel = featprobe_bpf__open();
	if (!skel) { err = errno; stage = "open failed"; goto fail; }
	skel->rodata->target_tgid = getpid();
	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, strcmp(bpf_program__name(prog), prog_names[k]) == 0);
	bpf_map__set_autocreate(skel->maps.events, k == K_RINGBUF);
	err = featprobe_bpf__load(skel);
	if (err) { err = -err; stage = "load refused"; goto fail; }

	prog = bpf_object__find_program_by_name(skel->obj, prog_names[k]);
	if (k == K_UPROBE || k == K_URETPROBE) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "featprobe_uprobe_target",
			    .retprobe = (k == K_URETPROBE));
		link = bpf_program__attach_uprobe_opts(prog, 0 /* this process */, exe, 0, &uo);
	} else {
		link = bpf_program__attach(prog);
	}
	if (!link) { err = errno; stage = "attach failed"; goto fail; }
	if (k == K_RINGBUF) {
		ringbuf_records = 0;
		rb = ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, NULL, NULL);
		if (!rb) { err = errno; stage = "ring buffer setup failed"; goto fail; }
	}

	for (i = 0; i < 3; i++)
		trigger(k);
	if (rb)
		ring_buffer__poll(rb, 100 /* ms */);
	fired = rb ? (__u64)ringbuf_records : ((volatile __u64 *)skel->bss->hits)[k];
	ok = fired > 0;
	snprintf(detail, len, "%s", !ok ? "attached but never fired" :
		 rb ? "loaded, attached, records received" : "loaded, attached and fired");
	goto out;

fail:
	snprintf(detail, len, "%s: %s (%s)", stage, errno_name(err), strerror(err));
	// Cheap diagnoses of the usual causes, appended so the user knows what to fix.
	if (k == K_KPROBE && !path_exists("/sys/bus/event_source/devices/kprobe"))
		strncat(detail, "; kernel has no kprobe PMU (CONFIG_KPROBES off?)", len - strlen(detail) - 1);
	if (k == K_TRACEPOINT && !path_exists("/sys/kernel/tracing/events") &&
	    !path_exists("/sys/kernel/debug/tracing/events"))
		strncat(detail, "; tracefs not mounted (mount -t tracefs tracefs /sys/kernel/tracing)",
			len - strlen(detail) - 1);
	if (k == K_FENTRY && err == EPERM)
		strncat(detail, "; kernel refuses fentry/fexit programs (lockdown or missing trampoline support)",
			len - strlen(detail) - 1);
out:
	ring_buffer__free(rb);
	bpf_link__destroy(link);
	featprobe_bpf__destroy(skel);
	return ok;
}

int main(void)
{
	char exe[4096], detail[512];
	ssize_t n;
	int k, ok;

	setvbuf(stdout, NULL, _IOLBF, 0); /* lines survive even if a later trial crashes */
	libbpf_set_print(print_fn);

	if (geteuid() != 0) {
		for (k = 0; k < K_N; k++)
			printf("%s\tno\tneeds root\n", kind_names[k]);
		return 0;
	}
	// Resolve our own binary for the uprobe; /proc/self/exe is the fallback.
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0)
		exe[n] = '\0';
	else
		snprintf(exe, sizeof(exe), "/proc/self/exe");

	for (k = 0; k < K_N; k++) {
		ok = trial(k, exe, detail, sizeof(detail));
		printf("%s\t%s\t%s\n", kind_names[k], ok ? "ok" : "no", detail);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
