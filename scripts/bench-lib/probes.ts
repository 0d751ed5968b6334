/**
 * Probes that scripts/bench attaches from its own process, to measure the kernel side alone: gmon's
 * BPF program built in variants (the bare trap, the kernel's stack walk) or another object (the
 * seed's design), at gmon's placements or the seed's. Records are decoded and counted.
 *
 * @module
 */
import { Probes, type ProbeSpec } from "../../src/bpf/probes.ts";
import { type ChunkSink, RING_HEADER, RING_LENGTH } from "../../src/bpf/ringbuf.ts";
import { openTarget } from "../../src/target/target.ts";
import type { Totals } from "./spawn.ts";

/**
 * bpf/gmon.bpf.c built with `defines` (GMON_BENCH_NOP: programs that return at once;
 * GMON_BENCH_KERNEL_WALK: bpf_get_stack's walk), as scripts/setup builds it.
 */
export function bpfVariant(root: string, dir: string, defines: string[]): Uint8Array<ArrayBuffer> {
  const out = `${dir}/gmon-${defines.join("-") || "plain"}.bpf.o`;
  const r = new Deno.Command("clang", {
    args: [
      "-O2",
      "-g",
      "-Wall",
      "-Werror",
      "-target",
      "bpf",
      "-D__TARGET_ARCH_x86",
      ...defines.map((d) => `-D${d}`),
      "-I/usr/include/x86_64-linux-gnu",
      "-c",
      `${root}/bpf/gmon.bpf.c`,
      "-o",
      out,
    ],
  }).outputSync();
  if (r.code !== 0) throw new Error(`clang ${defines}: ${new TextDecoder().decode(r.stderr)}`);
  return Deno.readFileSync(out);
}

/** gmon's own placements for `bin`, each capturing at most `maxFrames` (all when absent). */
export function gmonSpecs(bin: string, maxFrames?: number): ProbeSpec[] {
  return openTarget(bin).probes.map((p) => ({ ...p, maxFrames }));
}

/** The seed's probes for `bin`: entry uretprobe on newproc1, entry uprobe on goexit1, 20 frames. */
export function seedSpecs(bin: string): ProbeSpec[] {
  const t = openTarget(bin);
  const fn = (name: string) => t.image.func(name);
  const [np, ge] = [fn("runtime.newproc1"), fn("runtime.goexit1")];
  const common = { goidOffset: t.goidOffset };
  return [
    {
      ...common,
      what: np.name,
      program: "gmon_create",
      offset: np.offset,
      addr: np.addr,
      retprobe: true,
      reg: "rax",
      index: 0,
      maxFrames: 20,
    },
    {
      ...common,
      what: ge.name,
      program: "gmon_exit",
      offset: ge.offset,
      addr: ge.addr,
      retprobe: false,
      reg: "r14",
      index: 1,
    },
  ];
}

/** Probes attached to process `pid` of `bin`, their ring drained every 5 ms. */
export class InProcessProbes {
  readonly #probes: Probes;
  readonly #timer: ReturnType<typeof setInterval>;
  readonly #count: ChunkSink;
  #records = 0;

  constructor(bytes: Uint8Array<ArrayBuffer>, bin: string, pid: number, specs: ProbeSpec[]) {
    this.#probes = Probes.load(bytes, 64 << 20, () => {});
    try {
      for (const s of specs) this.#probes.attach(bin, pid, s);
    } catch (e) {
      this.#probes.close();
      throw e;
    }
    // Records in a chunk: ring headers (8-aligned, never split) of the two pieces' concatenation.
    const count = (data: Uint8Array, a: number, b: number, c: number, d: number) => {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let p = 0; p < b - a + d - c;) {
        const len = view.getUint32(p < b - a ? a + p : c + p - (b - a), true) & RING_LENGTH;
        this.#records++;
        p += (len + RING_HEADER + 7) & ~7;
      }
    };
    this.#count = count;
    this.#timer = setInterval(() => this.#probes.ring.drainChunks(count), 5);
  }

  /**
   * Detaches; returns the records read and lost, and the time the kernel counted in the programs
   * (bpf_stats; zero while it is off) over their runs.
   */
  stop(): Required<Totals> {
    clearInterval(this.#timer);
    this.#probes.ring.drainChunks(this.#count);
    const lost = this.#probes.lost();
    const { ns, runs } = programRuns();
    this.#probes.close();
    return { events: this.#records, lost, programNs: ns, programRuns: runs };
  }
}

/**
 * Run time and runs of the BPF programs this process holds (their fdinfo): the programs' own cost,
 * without the trap's, counted by the kernel while bpf_stats is on. Only one set of probes is loaded
 * at a time here.
 */
function programRuns(): { ns: number; runs: number } {
  let [ns, runs] = [0, 0];
  for (const e of Deno.readDirSync("/proc/self/fd")) {
    try {
      if (Deno.readLinkSync(`/proc/self/fd/${e.name}`) !== "anon_inode:bpf-prog") continue;
      const info = Deno.readTextFileSync(`/proc/self/fdinfo/${e.name}`);
      ns += Number(/^run_time_ns:\s+(\d+)/m.exec(info)?.[1] ?? 0);
      runs += Number(/^run_cnt:\s+(\d+)/m.exec(info)?.[1] ?? 0);
    } catch { /* closed meanwhile */ }
  }
  return { ns, runs };
}

const STATS = "/proc/sys/kernel/bpf_stats_enabled";

/**
 * Runs `f` with the kernel counting BPF programs' run time (a clock read before and after each run,
 * so it is off while CPU time is measured), restoring the setting after.
 */
export async function withBpfStats<T>(f: () => Promise<T>): Promise<T> {
  const before = Deno.readTextFileSync(STATS).trim();
  Deno.writeTextFileSync(STATS, "1");
  try {
    return await f();
  } finally {
    Deno.writeTextFileSync(STATS, before);
  }
}
