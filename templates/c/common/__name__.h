/* {{name}}'s event record, shared by the BPF side ({{name}}.bpf.c) and the loader ({{name}}.c). */
#ifndef __{{NAME}}_H__
#define __{{NAME}}_H__

/*
 * Include this after bpf.h: that supplies __u32/__u64 on both sides (vmlinux.h in BPF,
 * <linux/types.h> through libbpf in the loader), and this header cannot include either
 * itself without clashing with the other side's definitions.
 */

/* Not TASK_COMM_LEN: the loader side has no vmlinux.h, and the layout must match exactly. */
#define {{NAME}}_COMM_LEN 16

/*
 * One event of {{attach}}.
 *
 * What to edit next: add a field here (fixed-width types only, both sides must agree on the
 * layout), fill it in {{name}}.bpf.c, print it in {{name}}.c and describe it in {{name}}.meta.
 * Widest members first keeps the compiler from inserting holes between fields; the BPF side
 * zeroes the whole record anyway, so new fields start at 0 until something sets them.
 */
struct {{name}}_event {
    __u64 value;                    /* {{value_name}}: {{value_description}} */
    __u32 pid;                      /* tgid (process id) the event happened in */
    char comm[{{NAME}}_COMM_LEN];   /* that task's comm (command name, up to 15 bytes) */
};

#endif /* __{{NAME}}_H__ */
