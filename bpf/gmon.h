/* The one record gmon's BPF program writes to its ring buffer. src/bpf/record.ts mirrors this layout
 * (test/record_test.ts compiles this header and checks the mirror), so change both together. */
#ifndef GMON_H
#define GMON_H

/* The kernel's default perf_event_max_stack: bpf_get_stack can't return more user frames. */
#define GMON_MAX_FRAMES 127

enum gmon_kind {
	GMON_CREATE = 1, /* a goroutine was created: goid of the new one, stack of its creator */
	GMON_EXIT = 2,   /* a goroutine finished: its goid, no stack */
	GMON_EXEC = 3,   /* a process (any: gmon tells) replaced its program: its goroutines are gone */
	GMON_GONE = 4,   /* a process (any) ended: its last thread exited */
};

enum gmon_flags {
	GMON_TRUNCATED = 1, /* the stack filled all GMON_MAX_FRAMES slots: outer frames may be missing */
};
/* Bits 8-23 of flags: which probe wrote the record (its index in the attach cookie). */
#define GMON_FLAGS_PROBE_SHIFT 8
#define GMON_PROBE_MASK 0xffff

/* The attach cookie: what differs per probe and per target, so one loaded object serves them all. */
#define GMON_COOKIE_GOID_MASK 0xffff /* bits 0-15: goid's offset in runtime.g */
#define GMON_COOKIE_REG_SHIFT 16     /* bits 16-19: the register holding the g (enum gmon_reg) */
#define GMON_COOKIE_FRAMES_SHIFT 28  /* bits 28-35: most user frames to capture; 0: GMON_MAX_FRAMES */
#define GMON_COOKIE_PROBE_SHIFT 36   /* bits 36-51: the probe's index, echoed in flags */

enum gmon_reg {
	GMON_REG_RAX = 0,
	GMON_REG_RBX = 1,
	GMON_REG_R14 = 2,
};

struct gmon_record {
	__u32 kind;    /* enum gmon_kind */
	__u32 pid;     /* the process, as gmon's pid namespace numbers it (see gmon.bpf.c) */
	__u64 goid;    /* runtime.g.goid */
	__u64 time_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 nframes; /* frames[] entries sent; the record is cut right after them */
	__u32 flags;   /* enum gmon_flags */
	__u64 frames[GMON_MAX_FRAMES]; /* user-space PCs, innermost first */
};

/* gmon's own pid namespace (st_dev and st_ino of /proc/self/ns/pid; dev in the kernel's encoding),
 * set by the loader before load when gmon does not run in the initial one; zero: the initial one. */
struct gmon_pidns {
	__u64 dev;
	__u64 ino;
};

/* Size of a record with no frames, i.e. the part every record has. */
#define GMON_RECORD_HEADER_SIZE 32

#endif
