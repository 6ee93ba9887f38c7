/* Loader-side SDK: macros and helpers a probe's C userland uses to load, attach and read its BPF skeletons. */
#ifndef __GOPHER_LIBBPF_H__
#define __GOPHER_LIBBPF_H__

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf_version.h>

/*
 * Written against the libbpf 1.x API (perf_buffer__new's six-argument form, skeleton
 * auto-attach that skips bare "uprobe" sections, uprobe attach by symbol name). 0.x differs in
 * all three, so refuse it here rather than fail with confusing errors below.
 */
#if LIBBPF_MAJOR_VERSION < 1
#error "ebpf-probe's loader SDK needs libbpf >= 1.0"
#endif

/*
 * Everything below is either a macro or a `static inline` function, so the header can be
 * included by several files of one probe and unused helpers cost nothing and warn nothing.
 * Error messages go to stderr (stdout carries the |table|...| line protocol) and always name
 * the probe plus the program, map, ELF or function involved.
 */

/* Manual links (UBPF_*ATTACH) kept per LOAD()ed skeleton; define before bpf.h to change. */
#ifndef BPF_LINK_MAX
#define BPF_LINK_MAX 32
#endif

/* RLIMIT_MEMLOCK values for INIT_BPF_APP (gala-gopher's names). */
#define EBPF_RLIM_LIMITED  (100UL * 1024 * 1024)
#define EBPF_RLIM_INFINITY RLIM_INFINITY

/* Per-CPU pages of a perf buffer made by create_pref_buffer (power of two). */
#ifndef PERF_BUFFER_PAGES
#define PERF_BUFFER_PAGES 8
#endif

/*
 * g_stop: set to 1 by the INIT_STOP_SIGNALS handler; poll_pb / poll_rb return when they see
 * it, and a probe's own loops should test it too. Weak, so that every file of a probe that
 * includes this header shares one flag instead of each getting its own copy.
 */
__attribute__((weak)) volatile sig_atomic_t g_stop = 0;

/* ---------------------------------------------------------------------------------------- */
/* Start-up                                                                                 */

static inline int __gopher_libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
#ifndef GOPHER_DEBUG
    /* Debug output is the whole relocation/attach trace: only useful when asked for. */
    if (level == LIBBPF_DEBUG)
        return 0;
#else
    (void)level;
#endif
    return vfprintf(stderr, fmt, args);
}

static inline void __init_bpf_app(const char *app_name, rlim_t limit)
{
    struct rlimit rl = { .rlim_cur = limit, .rlim_max = limit };

    libbpf_set_print(__gopher_libbpf_print);
    /*
     * Kernels >= 5.11 charge BPF memory to the memory cgroup and ignore this limit; older
     * ones fail map creation with EPERM under the default 64 KiB. A failure here is only
     * reported in debug builds: in containers without CAP_SYS_RESOURCE it fails on every
     * start although nothing needs it, and on an old kernel where it matters LOAD fails with
     * libbpf's own hint ("try raising 'ulimit -l'").
     */
    if (setrlimit(RLIMIT_MEMLOCK, &rl)) {
#ifdef GOPHER_DEBUG
        fprintf(stderr, "%s: cannot raise RLIMIT_MEMLOCK: %s\n", app_name, strerror(errno));
#else
        (void)app_name;
#endif
    }
}

/*
 * INIT_BPF_APP(app_name, limit): call first in main(). Routes libbpf's warnings and errors to
 * stderr (and its debug trace too when built with -DGOPHER_DEBUG) and raises RLIMIT_MEMLOCK
 * to limit (EBPF_RLIM_LIMITED or EBPF_RLIM_INFINITY). app_name is a bare word used in messages.
 */
#define INIT_BPF_APP(app_name, limit) __init_bpf_app(#app_name, (rlim_t)(limit))

static inline void __gopher_on_stop_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static inline int __init_stop_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = __gopher_on_stop_signal;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: a blocked epoll_wait must return EINTR so the poll loop sees g_stop now. */
    sa.sa_flags = 0;
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
        fprintf(stderr, "failed to install SIGINT/SIGTERM handlers: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

/* INIT_STOP_SIGNALS(): make SIGINT and SIGTERM set g_stop instead of killing the probe, so it
 * can detach and exit 0. Evaluates to 0, or -1 (message printed) on failure. */
#define INIT_STOP_SIGNALS() __init_stop_signals()

/* ---------------------------------------------------------------------------------------- */
/* Skeleton load / unload                                                                   */

static inline void __gopher_libbpf_error(const char *probe, const char *what, int err)
{
    char msg[128];

    /* libbpf_strerror also knows libbpf's own codes (LIBBPF_ERRNO__*), strerror does not. */
    libbpf_strerror(err, msg, sizeof(msg));
    fprintf(stderr, "%s: failed to %s: %s\n", probe, what, msg);
}

/*
 * Skeleton attach stops at the first program that fails and libbpf only reports it at
 * warning level, so find it again: the first auto-attachable program left without a link.
 * Sections without a '/' (bare "uprobe", "usdt", ...) have no target and are skipped by
 * skeleton attach, so they are not suspects.
 */
static inline const struct bpf_program *__gopher_unattached_prog(const struct bpf_object_skeleton *s)
{
    int i;

    for (i = 0; i < s->prog_cnt; i++) {
        const struct bpf_program *prog = *s->progs[i].prog;
        const char *sec = bpf_program__section_name(prog);

        if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog))
            continue;
        if (*s->progs[i].link || !sec || !strchr(sec, '/'))
            continue;
        return prog;
    }
    return NULL;
}

static inline void __gopher_attach_error(const char *probe, const struct bpf_object_skeleton *s, int err)
{
    const struct bpf_program *prog = __gopher_unattached_prog(s);
    char what[256];

    if (prog)
        snprintf(what, sizeof(what), "attach program '%s' (section '%s')",
                 bpf_program__name(prog), bpf_program__section_name(prog));
    else
        snprintf(what, sizeof(what), "attach BPF programs");
    __gopher_libbpf_error(probe, what, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Kernel BTF for kernels without /sys/kernel/btf/vmlinux                                   */

/*
 * Where LOAD looks for <uname -r>.btf when the kernel has no BTF of its own: where
 * `ebpf-probe install` puts the minimized BTF files `ebpf-probe btfgen` makes (gala-gopher's
 * directory). The environment variable EBPF_PROBE_BTF_DIR overrides it at run time.
 */
#ifndef GOPHER_BTF_DIR
#define GOPHER_BTF_DIR "/opt/gala-gopher/btf"
#endif

/*
 * The btf_custom_path LOAD opens a skeleton with (libbpf resolves CO-RE relocations against
 * it instead of the kernel's BTF), or NULL for libbpf's own search:
 *  - $EBPF_PROBE_BTF_FILE when set and not empty: that file, always, even on a kernel with
 *    BTF (to test a minimized file, or use one made by hand);
 *  - else, when /sys/kernel/btf/vmlinux is missing: $EBPF_PROBE_BTF_DIR/<uname -r>.btf
 *    (GOPHER_BTF_DIR when the variable is unset), if that file exists.
 * Which file is used, or that the expected one is missing, is said on stderr.
 */
static inline const char *__gopher_btf_custom_path(const char *probe, char *buf, size_t size)
{
    const char *file = getenv("EBPF_PROBE_BTF_FILE");
    const char *dir = getenv("EBPF_PROBE_BTF_DIR");
    struct utsname uts;
    int n;

    if (file && *file) {
        fprintf(stderr, "%s: using kernel BTF %s (EBPF_PROBE_BTF_FILE)\n", probe, file);
        return file;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
        return NULL;
    if (!dir || !*dir)
        dir = GOPHER_BTF_DIR;
    if (uname(&uts) != 0)
        return NULL;
    n = snprintf(buf, size, "%s/%s.btf", dir, uts.release);
    if (n < 0 || (size_t)n >= size)
        return NULL;
    if (access(buf, R_OK) != 0) {
        fprintf(stderr, "%s: this kernel has no /sys/kernel/btf/vmlinux and %s is missing (%s); "
                "make it with `ebpf-probe btfgen --kernel <this kernel's BTF>` and install it, "
                "or set EBPF_PROBE_BTF_DIR or EBPF_PROBE_BTF_FILE\n", probe, buf, strerror(errno));
        return NULL;
    }
    fprintf(stderr, "%s: using kernel BTF %s (this kernel has no /sys/kernel/btf/vmlinux)\n", probe, buf);
    return buf;
}

/*
 * LOAD(probe_name, end): open, load (verifier) and attach the skeleton <probe_name>.skel.h,
 * i.e. struct probe_name##_bpf from probe_name.bpf.c. Declares:
 *   struct probe_name##_bpf *probe_name##_skel         the skeleton (NULL until opened)
 *   struct bpf_link *probe_name##_link[BPF_LINK_MAX]   links made by UBPF_*ATTACH
 *   int probe_name##_link_current                      how many of them are in use
 * The skeleton is opened with btf_custom_path set as __gopher_btf_custom_path says (a
 * minimized BTF from `ebpf-probe btfgen` on kernels without /sys/kernel/btf/vmlinux).
 * Every kprobe / tracepoint / raw tracepoint section is attached by libbpf (skeleton
 * auto-attach); bare uprobe sections are left for UBPF_*ATTACH. On any failure it prints
 * what failed (probe, step, program, libbpf's reason) to stderr and does `goto end`; the code
 * at `end:` should UNLOAD every probe LOADed in the function.
 * The variables are static so that a `goto end` from an earlier LOAD, which jumps over the
 * later LOADs' declarations, still leaves them NULL/0 and UNLOAD safe. Hence: LOAD a probe
 * once per program (in main), not in a function called repeatedly.
 */
#define LOAD(probe_name, end)                                                                \
    static struct probe_name##_bpf *probe_name##_skel __attribute__((unused));              \
    static struct bpf_link *probe_name##_link[BPF_LINK_MAX] __attribute__((unused));        \
    static int probe_name##_link_current __attribute__((unused));                           \
    do {                                                                                     \
        int __load_err;                                                                      \
        char __btf_buf[4096];                                                                \
        const char *__btf_path = __gopher_btf_custom_path(#probe_name, __btf_buf, sizeof(__btf_buf)); \
        LIBBPF_OPTS(bpf_object_open_opts, __open_opts, .btf_custom_path = __btf_path);       \
        probe_name##_skel = probe_name##_bpf__open_opts(&__open_opts);                       \
        if (!probe_name##_skel) {                                                            \
            __gopher_libbpf_error(#probe_name, "open BPF object " #probe_name ".bpf.o", errno); \
            goto end;                                                                        \
        }                                                                                    \
        __load_err = probe_name##_bpf__load(probe_name##_skel);                              \
        if (__load_err) {                                                                    \
            __gopher_libbpf_error(#probe_name, __btf_path                                    \
                ? "load BPF object " #probe_name ".bpf.o with the kernel BTF named above "   \
                  "(see libbpf/verifier output above)"                                       \
                : "load BPF object " #probe_name ".bpf.o (see libbpf/verifier output above)", \
                __load_err);                                                                 \
            goto end;                                                                        \
        }                                                                                    \
        __load_err = probe_name##_bpf__attach(probe_name##_skel);                            \
        if (__load_err) {                                                                    \
            __gopher_attach_error(#probe_name, probe_name##_skel->skeleton, __load_err);     \
            goto end;                                                                        \
        }                                                                                    \
    } while (0)

/* UNLOAD(probe_name): destroy the manual links, then the skeleton (detaching and freeing its
 * programs and maps). Safe after a failed or skipped LOAD, and safe to repeat. */
#define UNLOAD(probe_name)                                                                   \
    do {                                                                                     \
        int __unload_i;                                                                      \
        for (__unload_i = 0; __unload_i < probe_name##_link_current; __unload_i++) {         \
            bpf_link__destroy(probe_name##_link[__unload_i]);                                \
            probe_name##_link[__unload_i] = NULL;                                            \
        }                                                                                    \
        probe_name##_link_current = 0;                                                       \
        probe_name##_bpf__destroy(probe_name##_skel);                                        \
        probe_name##_skel = NULL;                                                            \
    } while (0)

/* GET_MAP_OBJ(probe_name, map): the struct bpf_map * of map `map` in a LOADed probe. */
#define GET_MAP_OBJ(probe_name, map) (probe_name##_skel->maps.map)

/* GET_MAP_FD(probe_name, map): the fd of map `map` (for bpf_map_lookup_elem, buffers, ...). */
#define GET_MAP_FD(probe_name, map) bpf_map__fd(probe_name##_skel->maps.map)

/* GET_PROG_FD(probe_name, prog): the fd of program `prog` (its C function name, e.g. bpf_tcp_sendmsg). */
#define GET_PROG_FD(probe_name, prog) bpf_program__fd(probe_name##_skel->progs.prog)

/* ---------------------------------------------------------------------------------------- */
/* Manual uprobe attach                                                                     */

/*
 * Attach prog to function func_name of the ELF elf_path for every process (pid -1) and keep
 * the link. libbpf (>= 0.8) resolves the symbol itself, in .symtab or .dynsym, including
 * PIE executables and shared libraries. Returns 1 on success and 0 after printing why not.
 */
static inline int __gopher_ubpf_attach(const char *probe, struct bpf_link **links, int *link_current,
                                       struct bpf_program *prog, const char *elf_path,
                                       const char *func_name, bool retprobe)
{
    const char *kind = retprobe ? "uretprobe" : "uprobe";
    struct bpf_link *link;
    char msg[128];
    int err;

    if (!prog || !elf_path || !func_name) {
        fprintf(stderr, "%s: cannot attach %s: %s is missing\n", probe, kind,
                !prog ? "the program (probe not LOADed?)" : !elf_path ? "the ELF path" : "the function name");
        return 0;
    }
    if (*link_current >= BPF_LINK_MAX) {
        fprintf(stderr, "%s: cannot attach %s '%s' to '%s' in %s: all %d link slots used "
                "(define BPF_LINK_MAX higher before including bpf.h)\n",
                probe, kind, bpf_program__name(prog), func_name, elf_path, BPF_LINK_MAX);
        return 0;
    }

    LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func_name, .retprobe = retprobe);
    link = bpf_program__attach_uprobe_opts(prog, -1, elf_path, 0, &opts);
    if (!link) {
        err = errno;
        libbpf_strerror(err, msg, sizeof(msg));
        fprintf(stderr, "%s: failed to attach %s '%s' to function '%s' in %s: %s\n",
                probe, kind, bpf_program__name(prog), func_name, elf_path, msg);
        errno = err;
        return 0;
    }
    links[(*link_current)++] = link;
    return 1;
}

/* Undo the most recent manual attach (a pair whose second half failed). */
static inline void __gopher_ubpf_detach_last(struct bpf_link **links, int *link_current)
{
    if (*link_current > 0) {
        (*link_current)--;
        bpf_link__destroy(links[*link_current]);
        links[*link_current] = NULL;
    }
}

/*
 * UBPF_ATTACH(probe_name, sec, elf_path, func_name, succeed): attach UPROBE(sec, ...) (program
 * ubpf_<sec>) to the entry of function func_name in the ELF elf_path. elf_path and func_name
 * are C strings ("getaddrinfo", or "sym@LIB_VER"; unlike gala-gopher func_name is not a bare
 * word, so it can be computed at run time). Sets the int lvalue succeed to 1, or to 0 after
 * printing the probe, program, function, ELF and libbpf's reason to stderr.
 */
#define UBPF_ATTACH(probe_name, sec, elf_path, func_name, succeed)                           \
    do {                                                                                     \
        (succeed) = __gopher_ubpf_attach(#probe_name, probe_name##_link,                     \
                                         &probe_name##_link_current,                         \
                                         probe_name##_skel->progs.ubpf_##sec,                \
                                         (elf_path), (func_name), false);                    \
    } while (0)

/* UBPF_RET_ATTACH(probe_name, sec, elf_path, func_name, succeed): as UBPF_ATTACH, for
 * URETPROBE(sec, ...) (program ubpf_ret_<sec>) on the function's return. */
#define UBPF_RET_ATTACH(probe_name, sec, elf_path, func_name, succeed)                       \
    do {                                                                                     \
        (succeed) = __gopher_ubpf_attach(#probe_name, probe_name##_link,                     \
                                         &probe_name##_link_current,                         \
                                         probe_name##_skel->progs.ubpf_ret_##sec,            \
                                         (elf_path), (func_name), true);                     \
    } while (0)

/*
 * UBPF_PAIR_ATTACH(probe_name, func, elf_path, func_name, succeed): attach both halves of
 * UPROBE_RET(func, ...) (__uprobe_bpf_<func> on entry, __uprobe_ret_bpf_<func> on return) to
 * function func_name in elf_path. All or nothing: if the return half fails the entry half
 * is detached again, so no entries are stashed that nothing would ever collect.
 */
#define UBPF_PAIR_ATTACH(probe_name, func, elf_path, func_name, succeed)                     \
    do {                                                                                     \
        (succeed) = __gopher_ubpf_attach(#probe_name, probe_name##_link,                     \
                                         &probe_name##_link_current,                         \
                                         probe_name##_skel->progs.__uprobe_bpf_##func,       \
                                         (elf_path), (func_name), false);                    \
        if (succeed) {                                                                       \
            (succeed) = __gopher_ubpf_attach(#probe_name, probe_name##_link,                 \
                                             &probe_name##_link_current,                     \
                                             probe_name##_skel->progs.__uprobe_ret_bpf_##func, \
                                             (elf_path), (func_name), true);                 \
            if (!(succeed))                                                                  \
                __gopher_ubpf_detach_last(probe_name##_link, &probe_name##_link_current);    \
        }                                                                                    \
    } while (0)

/* ---------------------------------------------------------------------------------------- */
/* Perf and ring buffers                                                                    */

/* Best effort map name for messages: the fd is all the buffer helpers are given. */
static inline const char *__gopher_map_name(int map_fd, char *buf, size_t len)
{
    struct bpf_map_info info;
    __u32 info_len = sizeof(info);

    memset(&info, 0, sizeof(info));
    if (map_fd >= 0 && !bpf_obj_get_info_by_fd(map_fd, &info, &info_len) && info.name[0])
        snprintf(buf, len, "map '%s' (fd %d)", info.name, map_fd);
    else
        snprintf(buf, len, "map fd %d", map_fd);
    return buf;
}

/*
 * create_pref_buffer(map_fd, sample_cb, lost_cb): a perf buffer (PERF_BUFFER_PAGES per CPU)
 * over a BPF_MAP_TYPE_PERF_EVENT_ARRAY map, e.g. GET_MAP_FD(probe, events). Callbacks get a
 * NULL ctx; lost_cb may be NULL. Returns NULL (message printed, errno set) on failure.
 * Free with perf_buffer__free. (The "pref" spelling is gala-gopher's; kept for its sources.)
 */
static inline struct perf_buffer *create_pref_buffer(int map_fd, perf_buffer_sample_fn sample_cb,
                                                     perf_buffer_lost_fn lost_cb)
{
    struct perf_buffer *pb;
    char name[64];
    char msg[128];
    int err;

    pb = perf_buffer__new(map_fd, PERF_BUFFER_PAGES, sample_cb, lost_cb, NULL, NULL);
    if (!pb) {
        err = errno;
        libbpf_strerror(err, msg, sizeof(msg));
        fprintf(stderr, "failed to create perf buffer on %s: %s\n",
                __gopher_map_name(map_fd, name, sizeof(name)), msg);
        errno = err;
    }
    return pb;
}

/*
 * poll_pb(pb, timeout_ms): deliver perf buffer samples to the callbacks until g_stop is set.
 * timeout_ms bounds how late a stop is noticed. EINTR (a signal) just re-checks g_stop.
 * Returns 0 when stopped, or the negative error of a failed poll (message printed).
 */
static inline int poll_pb(struct perf_buffer *pb, int timeout_ms)
{
    char msg[128];
    int err;

    while (!g_stop) {
        err = perf_buffer__poll(pb, timeout_ms);
        if (err < 0 && err != -EINTR) {
            libbpf_strerror(err, msg, sizeof(msg));
            fprintf(stderr, "failed to poll perf buffer: %s\n", msg);
            return err;
        }
    }
    return 0;
}

/*
 * create_rb(map_fd, cb): a ring buffer reader over a BPF_MAP_TYPE_RINGBUF map. cb gets a NULL
 * ctx; a negative return from cb stops poll_rb with that error. Returns NULL (message
 * printed, errno set) on failure. Free with ring_buffer__free.
 */
static inline struct ring_buffer *create_rb(int map_fd, ring_buffer_sample_fn cb)
{
    struct ring_buffer *rb;
    char name[64];
    char msg[128];
    int err;

    rb = ring_buffer__new(map_fd, cb, NULL, NULL);
    if (!rb) {
        err = errno;
        libbpf_strerror(err, msg, sizeof(msg));
        fprintf(stderr, "failed to create ring buffer on %s: %s\n",
                __gopher_map_name(map_fd, name, sizeof(name)), msg);
        errno = err;
    }
    return rb;
}

/* poll_rb(rb, timeout_ms): poll_pb for ring buffers: consume until g_stop, 0 when stopped. */
static inline int poll_rb(struct ring_buffer *rb, int timeout_ms)
{
    char msg[128];
    int err;

    while (!g_stop) {
        err = ring_buffer__poll(rb, timeout_ms);
        if (err < 0 && err != -EINTR) {
            libbpf_strerror(err, msg, sizeof(msg));
            fprintf(stderr, "failed to poll ring buffer: %s\n", msg);
            return err;
        }
    }
    return 0;
}

#endif /* __GOPHER_LIBBPF_H__ */
