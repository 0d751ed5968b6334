// SPDX-License-Identifier: GPL-2.0
/* gmon's probes on a Go program: creations and exits of goroutines into one ring buffer.
 *
 * What a probe hit costs the traced thread is the trap (~1.1 us here: the floor) plus this program;
 * the program's part is mostly its reads of user memory (~100 ns each), so it makes few (see walk()).
 *
 * scripts/bench builds two variants from this file to measure against: GMON_BENCH_NOP (programs that
 * return at once: the bare trap) and GMON_BENCH_KERNEL_WALK (bpf_get_stack's walk, as gmon had it). */
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include "gmon.h"

char LICENSE[] SEC("license") = "GPL";

#ifdef GMON_BENCH_NOP
#define RETURN_AT_ONCE 1
#else
#define RETURN_AT_ONCE 0
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20); /* the loader may resize it before load */
} events SEC(".maps");

#define PAGE_SIZE 4096

/* What a probe builds its record in: a record is too big for the 512-byte BPF stack. */
struct scratch {
	struct gmon_record rec;
	/* Where window's bytes come from in user memory, and how many there are. Kept here rather than in
	 * registers: the verifier doesn't follow values through map memory, so the walk's iterations look
	 * alike to it and it prunes them. */
	__u64 from;
	__u64 len;
	/* Bytes of a stack, copied from one page (see walk()); 16 more so that a frame read at any
	 * offset the verifier can see stays inside. */
	__u8 window[PAGE_SIZE + 16];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

/* Records the ring could not take; user space reads and reports it. */
__u64 lost = 0;

/* gmon's pid namespace, when not the initial one (in a section of its own: the loader sets it). */
const volatile struct gmon_pidns pidns SEC(".rodata.pidns") = {};

/* The current process as gmon's pid namespace numbers it: a container's gmon sees its container's
 * pids, not the host's. A process outside that namespace (gmon in a container without the host's pid
 * namespace cannot see it anyway) keeps its host number. */
static __always_inline __u32 current_pid(void)
{
	if (pidns.ino != 0) {
		struct bpf_pidns_info ns = {};
		if (bpf_get_ns_current_pid_tgid(pidns.dev, pidns.ino, &ns, sizeof(ns)) == 0)
			return ns.tgid;
	}
	return bpf_get_current_pid_tgid() >> 32;
}

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

/* The goid of the g the cookie names, 0 if it can't be read. */
static __always_inline __u64 goid_of(struct pt_regs *ctx, __u64 cookie)
{
	__u64 goid = 0;
	__u64 g = g_of(ctx, cookie);
	bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + (cookie & GMON_COOKIE_GOID_MASK)));
	return goid;
}

static __always_inline void fill(struct gmon_record *rec, __u32 kind, __u64 goid, __u64 cookie)
{
	rec->kind = kind;
	rec->pid = current_pid();
	rec->goid = goid;
	rec->time_ns = bpf_ktime_get_ns();
	rec->nframes = 0;
	rec->flags = ((cookie >> GMON_COOKIE_PROBE_SHIFT) & GMON_PROBE_MASK) << GMON_FLAGS_PROBE_SHIFT;
}

#ifndef GMON_BENCH_KERNEL_WALK
/* Go keeps frame pointers: each frame's saved BP at [bp], its return address at [bp+8], and the chain
 * ends at a goroutine's first frame with a saved BP of 0. bpf_get_stack's walker (perf's) reads at
 * that 0 too, and the exception and fixup of that faulting read cost more than the rest of the walk
 * (scripts/bench: ~1.5 us a walk); this walk stops there. It starts, as perf's does, at the probe's
 * own address and follows systemstack's frame from g0 back to the goroutine's stack.
 *
 * A read of user memory costs ~100 ns whatever its size up to a page, and Go's frames are small, so
 * the walk reads the rest of the page a frame is on, and the frames above it on that page come from
 * the copy. The page can't fault where the frame didn't (it is mapped and touched as a whole).
 *
 * The verifier follows every iteration of the loop, so the loop is shaped for it: one path that reads,
 * where it is (from, len) kept in the map, and what is known per iteration (the frame count) left in
 * the record, so that what follows the walk looks the same to it whatever the iteration. */
static __always_inline void walk(struct pt_regs *ctx, struct scratch *s, __u32 max)
{
	__u64 fp = ctx->rbp;
	__u32 n = 1;

	s->from = 0; /* nothing yet: every fp is outside */
	s->len = 0;
	s->rec.frames[0] = ctx->rip;
	for (; n < GMON_MAX_FRAMES && n < max; n++) {
		if (fp == 0)
			break;
		/* A frame is 16 bytes: [fp], the caller's saved BP; [fp+8], the return address into it. */
		__u64 off = fp - s->from;
		if (off >= s->len || s->len - off < 16) {
			/* The rest of fp's page; a frame across two pages alone (both touched). */
			__u64 from = fp, len = PAGE_SIZE - (fp & (PAGE_SIZE - 1));
			if (len < 16)
				len = 16;
			s->from = from;
			s->len = len;
			if (bpf_probe_read_user(s->window, len, (void *)from)) {
				fp = 0;
				break;
			}
			off = fp - s->from;
		}
		off &= PAGE_SIZE - 1; /* for the verifier: it is */
		__u64 ret = *(__u64 *)(s->window + off + 8);
		if (ret == 0) {
			fp = 0;
			break;
		}
		s->rec.frames[n] = ret;
		fp = *(__u64 *)(s->window + off);
	}
	s->rec.nframes = n;
	if (fp != 0)
		s->rec.flags |= GMON_TRUNCATED;
}
#else
static __always_inline void walk(struct pt_regs *ctx, struct scratch *s, __u32 max)
{
	long n = bpf_get_stack(ctx, s->rec.frames, max * sizeof(__u64), BPF_F_USER_STACK);
	if (n < 0)
		n = 0;
	s->rec.nframes = n / sizeof(__u64);
	if (n / sizeof(__u64) >= max)
		s->rec.flags |= GMON_TRUNCATED;
}
#endif

/* A point where a new goroutine's g, its goid set, is in a register: the call that queues it in
 * runtime.newproc's closure (rbx), the instruction after another caller's call of newproc1 (rax), or,
 * failing those, newproc1's return (rax; it runs on the system stack, which never moves). */
SEC("uprobe")
int gmon_create(struct pt_regs *ctx)
{
	if (RETURN_AT_ONCE)
		return 0;
	__u32 zero = 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 goid = goid_of(ctx, cookie);
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s || goid == 0)
		return 0;
	struct gmon_record *rec = &s->rec;
	fill(rec, GMON_CREATE, goid, cookie);
	__u32 max = (cookie >> GMON_COOKIE_FRAMES_SHIFT) & 0xff;
	if (max == 0 || max > GMON_MAX_FRAMES)
		max = GMON_MAX_FRAMES;
	walk(ctx, s, max);
	/* Read back through memory: the verifier then knows only its bounds (see walk()). */
	__u32 n = *(volatile __u32 *)&rec->nframes;
	if (n > GMON_MAX_FRAMES)
		n = GMON_MAX_FRAMES;
	/* No wakeup: user space polls the mapped ring on a short timer, so a wakeup would only add an
	 * IPI to every probe hit. */
	if (bpf_ringbuf_output(&events, rec, GMON_RECORD_HEADER_SIZE + n * sizeof(__u64), BPF_RB_NO_WAKEUP))
		__sync_fetch_and_add(&lost, 1);
	return 0;
}

/* runtime.goexit1 runs on the exiting goroutine, whose g is in r14 (Go's register ABI). An exit is
 * its header alone: written straight into the ring. */
SEC("uprobe")
int gmon_exit(struct pt_regs *ctx)
{
	if (RETURN_AT_ONCE)
		return 0;
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 goid = goid_of(ctx, cookie);
	if (goid == 0)
		return 0;
	struct gmon_record *rec = bpf_ringbuf_reserve(&events, GMON_RECORD_HEADER_SIZE, 0);
	if (!rec) {
		__sync_fetch_and_add(&lost, 1);
		return 0;
	}
	fill(rec, GMON_EXIT, goid, cookie);
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
	return 0;
}

/* A record of a process's life (exec, end): its header alone, no goroutine. */
static __always_inline void process_event(__u32 kind)
{
	struct gmon_record *rec = bpf_ringbuf_reserve(&events, GMON_RECORD_HEADER_SIZE, 0);
	if (!rec) {
		__sync_fetch_and_add(&lost, 1);
		return;
	}
	rec->kind = kind;
	rec->pid = current_pid();
	rec->goid = 0;
	rec->time_ns = bpf_ktime_get_ns();
	rec->nframes = 0;
	rec->flags = 0;
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
}

/* Every exec on the host: a traced process that execs starts over (its goids restart), and one that
 * execs a Go program may be one to trace (host-wide mode). Execs are rare next to goroutines. */
SEC("tracepoint/sched/sched_process_exec")
int gmon_exec(void *ctx)
{
	process_event(GMON_EXEC);
	return 0;
}

/* A process's end: its main thread (the thread group's leader) exiting. */
SEC("tracepoint/sched/sched_process_exit")
int gmon_gone(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id == (__u32)(id >> 32))
		process_event(GMON_GONE);
	return 0;
}
