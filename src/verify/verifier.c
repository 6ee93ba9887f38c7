// verifier.c: `ebpf-probe verify` helper; loads every program of each BPF object given, one at a time and without
// attaching, and prints one line per program:
//   prog\t<name>\t<section>\tok\t<verified_insns>\t<usec>
//   prog\t<name>\t<section>\tfail\t<errno text>\t<kernel|libbpf>\t<log tail, \n \t \\ escaped>
//   prog\t<name>\t<section>\tskip
//   object\t<path>\tfail\t<errno text>\t<libbpf messages, escaped>      (the object could not be opened)
// Programs named in --skip NAME are not loaded. Nothing is pinned: every program and map goes with its fd, so
// nothing stays loaded once this process exits, however it exits.
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define TAIL_LINES 40

// libbpf's own messages (a CO-RE relocation failure, a missing attach target) for when the kernel log is empty.
static char messages[16384];
static size_t messages_len;

static int collect(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG || messages_len >= sizeof(messages) - 1)
		return 0;
	int n = vsnprintf(messages + messages_len, sizeof(messages) - messages_len, fmt, ap);
	if (n > 0)
		messages_len += (size_t)n < sizeof(messages) - messages_len ? (size_t)n : sizeof(messages) - messages_len - 1;
	return 0;
}

static void print_escaped(const char *text)
{
	for (const char *p = text; *p; p++) {
		switch (*p) {
		case '\n': fputs("\\n", stdout); break;
		case '\t': fputs("\\t", stdout); break;
		case '\\': fputs("\\\\", stdout); break;
		default: putchar(*p);
		}
	}
}

// The last TAIL_LINES lines of `log` (the error is at the end; line info comments come just before it).
static const char *tail(const char *log)
{
	size_t len = strlen(log);
	while (len > 0 && log[len - 1] == '\n')
		len--;
	int lines = 0;
	for (size_t i = len; i > 0; i--) {
		if (log[i - 1] == '\n' && ++lines == TAIL_LINES)
			return log + i;
	}
	return log;
}

static const char *errno_text(int e)
{
	static char text[128];
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 32)
	const char *name = strerrorname_np(e);
#else
	const char *name = e == EACCES ? "EACCES" : e == EINVAL ? "EINVAL" : e == EPERM ? "EPERM" : NULL;
#endif
	snprintf(text, sizeof(text), "%s (%s)", name ? name : "E?", strerror(e));
	return text;
}

static long long now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int skipped(const char *name, char **skip, int nskip)
{
	for (int i = 0; i < nskip; i++)
		if (strcmp(skip[i], name) == 0)
			return 1;
	return 0;
}

// Loads program `index` of `path` alone; returns 0 when there is no such program.
static int verify_one(const char *path, int index, char **skip, int nskip)
{
	size_t log_size = 1 << 20;
	for (;;) {
		messages_len = 0;
		messages[0] = 0;
		struct bpf_object *obj = bpf_object__open_file(path, NULL);
		if (!obj) {
			if (index == 0) {
				printf("object\t%s\tfail\t%s\t", path, errno_text(errno));
				print_escaped(messages);
				putchar('\n');
			}
			return 0;
		}
		struct bpf_program *prog, *target = NULL;
		int i = 0;
		bpf_object__for_each_program(prog, obj) {
			if (i++ == index)
				target = prog;
			else
				bpf_program__set_autoload(prog, false);
		}
		if (!target) {
			bpf_object__close(obj);
			return 0;
		}
		const char *name = bpf_program__name(target);
		const char *section = bpf_program__section_name(target);
		if (skipped(name, skip, nskip)) {
			printf("prog\t%s\t%s\tskip\n", name, section);
			bpf_object__close(obj);
			return 1;
		}
		char *log = calloc(1, log_size);
		if (!log) {
			fprintf(stderr, "out of memory for a %zu-byte verifier log\n", log_size);
			exit(2);
		}
		// Level 0 with our buffer: a program that loads is not logged; one that fails is loaded again by
		// libbpf at level 1 into this buffer.
		bpf_program__set_log_buf(target, log, log_size);
		long long started = now_usec();
		int err = bpf_object__load(obj);
		long long elapsed = now_usec() - started;
		int e = err ? (errno ? errno : -err) : 0;
		if (err && e == ENOSPC && log_size < (256u << 20)) {
			bpf_object__close(obj);
			free(log);
			log_size *= 4;
			continue;
		}
		if (!err) {
			struct bpf_prog_info info;
			__u32 info_len = sizeof(info);
			memset(&info, 0, sizeof(info));
			unsigned long long insns = 0;
			if (bpf_obj_get_info_by_fd(bpf_program__fd(target), &info, &info_len) == 0)
				insns = info.verified_insns;
			printf("prog\t%s\t%s\tok\t%llu\t%lld\n", name, section, insns, elapsed);
		} else {
			// No kernel log: libbpf stopped before the verifier ran, or the kernel refused the load outright.
			printf("prog\t%s\t%s\tfail\t%s\t%s\t", name, section, errno_text(e), log[0] ? "kernel" : "libbpf");
			print_escaped(log[0] ? tail(log) : messages);
			putchar('\n');
		}
		fflush(stdout);
		bpf_object__close(obj);
		free(log);
		return 1;
	}
}

int main(int argc, char **argv)
{
	// ebpf-probe starts us with PR_SET_PDEATHSIG: a Ctrl-C or kill of it ends us, and the programs go with our fds.
	libbpf_set_print(collect);
	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);

	char **skip = calloc((size_t)argc, sizeof(char *));
	int nskip = 0;
	for (int a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--skip") == 0 && a + 1 < argc) {
			skip[nskip++] = argv[++a];
			continue;
		}
		for (int index = 0; verify_one(argv[a], index, skip, nskip); index++)
			;
	}
	return 0;
}
