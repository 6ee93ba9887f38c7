/* killprobe's event record, shared by the BPF side (killprobe.bpf.c) and the loader (killprobe.c). */
#ifndef __KILLPROBE_H__
#define __KILLPROBE_H__

/* Not TASK_COMM_LEN: the loader side has no vmlinux.h, and the layout must match exactly. */
#define KILLPROBE_COMM_LEN 16

/* One kill(2) call. Fixed-width types only: both sides must agree on the layout. */
struct kill_event {
    int killer_pid;                  /* tgid of the caller */
    int signal;                      /* sig argument (0 = existence check) */
    int killed_pid;                  /* pid argument: <0 = process group, -1 = everyone */
    char comm[KILLPROBE_COMM_LEN];   /* caller's comm */
};

#endif /* __KILLPROBE_H__ */
