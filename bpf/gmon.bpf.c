// SPDX-License-Identifier: GPL-2.0
/* gmon's probes on a Go program: creations and exits of goroutines into one ring buffer. */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include "gmon.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* the loader may resize it before load */
} events SEC(".maps");

/* A record is too big for the 512-byte BPF stack: build it in a per-CPU slot. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gmon_record);
} scratch SEC(".maps");

/* Records the ring could not take; user space reads and reports it. */
__u64 lost = 0;

/* The g the probe site has in a register: which one, the cookie says (see gmon.h). All three are
 * loaded first: the verifier forbids loads through a ctx pointer the compiler would otherwise select. */
static __always_inline __u64 g_of(struct pt_regs *ctx, __u64 cookie)
{
	__u64 rax = ctx->rax, rbx = ctx->rbx, r14 = ctx->r14;
	asm volatile("" : "+r"(rax), "+r"(rbx), "+r"(r14));
	switch ((cookie >> GMON_COOKIE_REG_SHIFT) & 0xf) {
	case GMON_REG_RBX:
		return rbx;
	case GMON_REG_R14:
		return r14;
	default:
		return rax;
	}
}

static __always_inline void submit(struct gmon_record *rec, __u64 size)
{
	/* No wakeup: user space polls the mapped ring on a short timer, so a wakeup would only add an
	 * IPI to every probe hit. */
	if (bpf_ringbuf_output(&events, rec, size, BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&lost, 1);
}

static __always_inline struct gmon_record *start(__u32 kind, struct pt_regs *ctx)
{
	__u32 zero = 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct gmon_record *rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!rec)
		return 0;
	rec->goid = 0;
	__u64 g = g_of(ctx, cookie);
	if (bpf_probe_read_user(&rec->goid, sizeof(rec->goid), (void *)(g + (cookie & GMON_COOKIE_GOID_MASK))))
		return 0;
	rec->kind = kind;
	rec->pid = bpf_get_current_pid_tgid() >> 32;
	rec->time_ns = bpf_ktime_get_ns();
	rec->nframes = 0;
	rec->flags = ((cookie >> GMON_COOKIE_PROBE_SHIFT) & 0xff) << GMON_FLAGS_PROBE_SHIFT;
	return rec;
}

/* A point where a new goroutine's g, its goid set, is in a register: the call that queues it in
 * runtime.newproc's closure (rbx), the instruction after another caller's call of newproc1 (rax), or,
 * failing those, newproc1's return (rax; it runs on the system stack, which never moves). */
SEC("uprobe")
int gmon_create(struct pt_regs *ctx)
{
	struct gmon_record *rec = start(GMON_CREATE, ctx);
	if (!rec)
		return 0;
	__u64 max = (bpf_get_attach_cookie(ctx) >> GMON_COOKIE_FRAMES_SHIFT) & 0xff;
	if (max == 0 || max > GMON_MAX_FRAMES)
		max = GMON_MAX_FRAMES;
	long n = bpf_get_stack(ctx, rec->frames, max * sizeof(__u64), BPF_F_USER_STACK);
	if (n < 0)
		n = 0;
	rec->nframes = n / sizeof(__u64);
	if (rec->nframes >= max)
		rec->flags |= GMON_TRUNCATED;
	__u64 size = GMON_RECORD_HEADER_SIZE + (__u64)n;
	if (size > sizeof(*rec))
		size = sizeof(*rec);
	submit(rec, size);
	return 0;
}

/* runtime.goexit1 runs on the exiting goroutine, whose g is in r14 (Go's register ABI). */
SEC("uprobe")
int gmon_exit(struct pt_regs *ctx)
{
	struct gmon_record *rec = start(GMON_EXIT, ctx);
	if (!rec)
		return 0;
	submit(rec, GMON_RECORD_HEADER_SIZE);
	return 0;
}
