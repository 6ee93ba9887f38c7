/* SDK umbrella header: one #include gives a probe file everything its side (BPF or loader) needs. */
#ifndef __GOPHER_BPF_H__
#define __GOPHER_BPF_H__

/*
 * The including file picks the side before including this header:
 *
 *   #define BPF_PROG_KERN   kernel-side BPF (kprobe, kretprobe, tracepoint, raw tracepoint)
 *   #define BPF_PROG_USER   BPF attached to user space (uprobe, uretprobe)
 *   (neither)           the C userland loader that opens, loads and attaches the skeletons
 *
 * The two BPF modes differ only in which _(P) reader they get (kernel or user memory) and
 * which attach macros exist; both get the shared parameter-matching map.
 */

#if defined(BPF_PROG_KERN) && defined(BPF_PROG_USER)
#error "define only one of BPF_PROG_KERN and BPF_PROG_USER before including bpf.h"
#endif

#if defined(BPF_PROG_KERN) || defined(BPF_PROG_USER)

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

/*
 * libbpf only gained PT_REGS_PARM6 in 1.2; Debian 12 ships 1.1. The sixth integer argument
 * register per ABI; the struct field names follow bpf_tracing.h's __PT_REGS_CAST for each
 * arch, so these agree with what newer libbpf defines.
 */
#ifndef PT_REGS_PARM6
#if defined(bpf_target_x86)
#define PT_REGS_PARM6(x) (__PT_REGS_CAST(x)->r9)
#define PT_REGS_PARM6_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), r9)
#elif defined(bpf_target_arm64)
#define PT_REGS_PARM6(x) (__PT_REGS_CAST(x)->regs[5])
#define PT_REGS_PARM6_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), regs[5])
#elif defined(bpf_target_riscv)
#define PT_REGS_PARM6(x) (__PT_REGS_CAST(x)->a5)
#define PT_REGS_PARM6_CORE(x) BPF_CORE_READ(__PT_REGS_CAST(x), a5)
#endif
#endif

#ifdef BPF_PROG_KERN
#include "__bpf_kern.h"
#else
#include "__bpf_usr.h"
#endif
#include "__share_map_match.h"

#else /* userland loader */

#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "__libbpf.h"

#endif

#endif /* __GOPHER_BPF_H__ */
