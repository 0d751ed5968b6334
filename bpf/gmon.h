/* The one record gmon's BPF program writes to its ring buffer. src/bpf/record.ts mirrors this layout
 * (test/record_test.ts compiles this header and checks the mirror), so change both together. */
#ifndef GMON_H
#define GMON_H

/* The kernel's default perf_event_max_stack: bpf_get_stack can't return more user frames. */
#define GMON_MAX_FRAMES 127

enum gmon_kind {
	GMON_CREATE = 1, /* a goroutine was created: goid of the new one, stack of its creator */
	GMON_EXIT = 2,   /* a goroutine finished: its goid, no stack */
};

enum gmon_flags {
	GMON_TRUNCATED = 1, /* the stack filled all GMON_MAX_FRAMES slots: outer frames may be missing */
};

struct gmon_record {
	__u32 kind;    /* enum gmon_kind */
	__u32 pid;     /* tgid of the traced process */
	__u64 goid;    /* runtime.g.goid */
	__u64 time_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 nframes; /* frames[] entries sent; the record is cut right after them */
	__u32 flags;   /* enum gmon_flags */
	__u64 frames[GMON_MAX_FRAMES]; /* user-space PCs, innermost first */
};

/* Size of a record with no frames, i.e. the part every record has. */
#define GMON_RECORD_HEADER_SIZE 32

#endif
