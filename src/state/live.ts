/**
 * Which goroutines are alive, per process, and what they add up to per creation stack and per creation
 * site: the tracer's state between a creation and its exit, read by the endpoint and the leak report.
 *
 * The table and the counts live in the drain's core (WebAssembly, wasm/drain/src/live.rs), where the
 * record loop moves them without a call into JavaScript per event; this is their interface. Memory:
 * one live goroutine is a slot in five flat arrays there (goid, creation time, pid, aggregate, adopted
 * flag: 25 bytes) plus its entry in an open-addressing index (4 bytes, load <= 0.5): ~35-40 bytes with
 * the slack of doubling (scripts/bench-state measures it; test/state_test.ts holds it under 64). The
 * arrays grow to the peak and stay there. An aggregate is a stack in a process, a site a creation site
 * in a process: this numbers them and knows what they are; the core has their counts. A stack seen in
 * a process costs it an aggregate until the stack tables evict the stack ({@link LiveGoroutines.forget}).
 *
 * @module
 */
import { DrainCore, Slot } from "./core.ts";

/** {@link LiveGoroutines.exit} of a goroutine created before gmon attached (stack ids start at 1). */
export const PREEXISTING = 0;
/** {@link LiveGoroutines.exit} of a goroutine whose exit was already reported. */
export const REPEAT = -1;

/** What the core's create says when (pid, stack) has no aggregate number yet. */
const NEED_AGG = 2;

/** Upper bounds (seconds) of the lifetime histogram's buckets; a last one, +Inf, is implied. */
export const LIFETIME_BUCKETS: readonly number[] = [0.0001, 0.001, 0.01, 0.1, 1, 10, 60, 600, 3600];
const BUCKET_NS = Float64Array.from(LIFETIME_BUCKETS, (s) => s * 1e9);
/** Buckets per site, +Inf included. */
const NB = LIFETIME_BUCKETS.length + 1;

/**
 * The runtime functions that create goroutines for their caller: `runtime.newproc` (a `go` statement;
 * its ABI wrapper has the same name), newcoro (coroutines: iter.Pull), synctestRun (a synctest bubble's
 * root) and debugCallWrap (a debugger's call).
 */
const CREATORS: ReadonlySet<string> = new Set([
  "runtime.newproc",
  "runtime.newcoro",
  "runtime.synctestRun",
  "runtime.debugCallWrap",
]);

/** How many frames at the top of a creation stack are the runtime's creating call (at most all but one). */
export function creatorFrames(frames: readonly string[]): number {
  let i = 0;
  while (i < frames.length - 1 && CREATORS.has(funcOf(frames[i]))) i++;
  return i;
}

/**
 * The creation site of a stack: the function of the `go` statement's frame, i.e. the first frame after
 * `runtime.newproc` (frames are `func at file:line`, innermost first); for coroutines, synctest bubbles
 * and debugger calls likewise the caller of the runtime function that created the goroutine.
 */
export function siteOf(frames: readonly string[]): string {
  return frames.length === 0 ? "?" : funcOf(frames[creatorFrames(frames)]);
}

function funcOf(frame: string): string {
  const at = frame.indexOf(" at ");
  return at < 0 ? frame : frame.slice(0, at);
}

/** Counts of one creation site in one process, as {@link LiveGoroutines.sites} reports them. */
export interface SiteStats {
  pid: number;
  site: string;
  live: number;
  created: number;
  exited: number;
  /** Sum of the lifetimes of the exited, seconds. */
  lifetimeSeconds: number;
  /** Exits per lifetime bucket ({@link LIFETIME_BUCKETS}, then +Inf), not cumulative. */
  buckets: number[];
  /** The creation stack with the most live goroutines at this site (0 if none live). */
  topStackId: number;
}

/** Live goroutines of one creation stack in one process. */
export interface StackStats {
  pid: number;
  stackId: number;
  site: string;
  live: number;
  created: number;
}

/** What gmon knows of one process's aggregates (the core has their counts). */
class ProcessAggs {
  readonly pid: number;
  /** Aggregate number by stack id. */
  readonly byStack = new Map<number, number>();
  /** Site number by site name. */
  readonly bySite = new Map<string, number>();

  constructor(pid: number) {
    this.pid = pid;
  }
}

/**
 * Live goroutines by pid, with per-stack and per-site aggregates and the counts the summary reports.
 * The counts and the table are the drain's core's ({@link DrainCore}); this numbers the aggregates
 * (a stack in a process) and sites (a creation site in a process) and knows what they are.
 */
export class LiveGoroutines {
  /** The core: the records' consumer runs records in it. */
  readonly core = new DrainCore();
  readonly #site: (stackId: number) => string;
  readonly #byPid = new Map<number, ProcessAggs>();
  #lastPid = -1;
  #last: ProcessAggs | undefined;
  // Per aggregate number: its stack (0: free) and site; per site number: its name.
  readonly #aggStack: number[] = [];
  readonly #aggSite: number[] = [];
  readonly #freeAggs: number[] = [];
  readonly #siteName: string[] = [];
  readonly #freeSites: number[] = [];

  /**
   * @param site names the creation site of a stack id (see {@link siteOf}); asked once per stack.
   */
  constructor(site: (stackId: number) => string = () => "?") {
    this.#site = site;
    BUCKET_NS.forEach((ns, i) => this.core.x.set_bucket(i, ns));
  }

  /** Creations seen (a goid reported twice counts once). */
  get created(): number {
    return this.#count("created");
  }

  /** Exits of goroutines seen created. */
  get exited(): number {
    return this.#count("exited");
  }

  /** Exits of goroutines created before gmon attached. */
  get preexisting(): number {
    return this.#count("preexisting");
  }

  /** The lifetime (ns) of the goroutine of the last {@link exit} that returned a stack id. */
  get lastLifetimeNs(): number {
    return this.#count("lifetime");
  }

  /** Goroutines alive now, over every process. */
  get live(): number {
    return this.#count("live");
  }

  /** Bytes held by the slots and their index (what grows with the number of live goroutines). */
  get slabBytes(): number {
    return this.#count("slabBytes");
  }

  #count(which: Parameters<DrainCore["count"]>[0]): number {
    this.core.counts();
    return this.core.count(which);
  }

  /**
   * Records a creation at `timeNs` (CLOCK_MONOTONIC) with creation stack `stackId`; false if that
   * goroutine was already live (a repeated report).
   */
  create(pid: number, goid: number, stackId: number, timeNs = 0): boolean {
    return this.#insert(pid, goid, stackId, timeNs, 1);
  }

  /**
   * Records a goroutine that was already alive when gmon attached (found by reading the process), under
   * `stackId`: the stack of its go statement (g.gopc). It counts as live at its site but not as created;
   * its creation time is unknown: `sinceNs`, when gmon found it, stands in as a lower bound of its age.
   * False if that goroutine is already known or just exited.
   */
  adopt(pid: number, goid: number, stackId: number, sinceNs = 0): boolean {
    if (this.core.x.recently_exited(pid, goid) === 1) return false;
    return this.#insert(pid, goid, stackId, sinceNs, 0);
  }

  #insert(pid: number, goid: number, stackId: number, timeNs: number, seen: number): boolean {
    this.touch(pid);
    let r = this.core.x.create(pid, goid, stackId, timeNs, seen);
    if (r === NEED_AGG) {
      this.numberAgg(pid, stackId);
      r = this.core.x.create(pid, goid, stackId, timeNs, seen);
    }
    return r === 0;
  }

  /**
   * Records an exit at `timeNs`. Returns the creation stack id (and sets {@link lastLifetimeNs});
   * PREEXISTING for a goroutine created before gmon attached; REPEAT for a second report of a recent
   * exit (goexit1 can restart after a preemption, ~1 in 10^6 exits), which callers ignore.
   */
  exit(pid: number, goid: number, timeNs = 0): number {
    this.touch(pid);
    return this.core.x.exit(pid, goid, timeNs);
  }

  /** Process `pid` has state here from now on (its records are being counted). */
  touch(pid: number): void {
    if (pid === this.#lastPid) return;
    let t = this.#byPid.get(pid);
    if (t === undefined) this.#byPid.set(pid, t = new ProcessAggs(pid));
    this.#lastPid = pid;
    this.#last = t;
  }

  /** Numbers the aggregate of (pid, stack) and its site, in the core. */
  numberAgg(pid: number, stackId: number): void {
    this.touch(pid);
    const t = this.#last!;
    const name = this.#siteFn(stackId);
    let site = t.bySite.get(name);
    if (site === undefined) {
      site = this.#freeSites.pop() ?? this.#siteName.length;
      this.#siteName[site] = name;
      t.bySite.set(name, site);
      this.core.x.clear_site(site);
    }
    const a = this.#freeAggs.pop() ?? this.#aggStack.length;
    this.#aggStack[a] = stackId;
    this.#aggSite[a] = site;
    t.byStack.set(stackId, a);
    this.core.x.set_agg(a, pid, stackId, site);
  }

  /** Whether process `pid` has state here (seen and not dropped). */
  has(pid: number): boolean {
    return this.#byPid.has(pid);
  }

  /** Pids seen so far and not dropped. */
  pids(): number[] {
    return [...this.#byPid.keys()];
  }

  /** Forgets process `pid` (it exited) and returns how many goroutines it still had. */
  dropProcess(pid: number): number {
    const t = this.#byPid.get(pid);
    if (t === undefined) return 0;
    const n = this.core.x.drop_pid(pid);
    for (const [stack, a] of t.byStack) this.#freeAgg(pid, stack, a);
    for (const site of t.bySite.values()) this.#freeSites.push(site);
    this.#byPid.delete(pid);
    // Its records, should any still come, are judged again.
    this.core.x.clear_verdicts();
    if (this.#lastPid === pid) {
      this.#lastPid = -1;
      this.#last = undefined;
    }
    return n;
  }

  #freeAgg(pid: number, stack: number, a: number): void {
    this.core.x.remove_agg(pid, stack);
    this.#aggStack[a] = 0;
    this.#freeAggs.push(a);
  }

  /**
   * Calls `each` for every live goroutine, in no particular order; `adopted`: alive before gmon
   * attached, `bornNs` then being when gmon found it. Don't change the state from it.
   */
  forEachLive(
    each: (pid: number, goid: number, bornNs: number, stackId: number, adopted: boolean) => void,
  ): void {
    const v = this.#slots();
    for (let at = 0; at < v.byteLength; at += Slot.bytes) {
      const agg = v.getInt32(at + Slot.agg, true);
      if (agg < 0) continue;
      const goid = v.getUint32(at + Slot.goid, true) + v.getUint32(at + Slot.goid + 4, true) * 0x1_0000_0000;
      const born = v.getFloat64(at + Slot.born, true);
      const adopted = (agg & Slot.adopted) !== 0;
      each(v.getUint32(at + Slot.pid, true), goid, born, this.#aggStack[agg & ~Slot.adopted], adopted);
    }
  }

  /** The core's slots (valid until the core is next called), as {@link Slot} lays them out. */
  #slots(): DataView {
    const c = this.core;
    c.counts();
    return new DataView(c.x.memory.buffer, c.array("slots"), c.count("slots") * Slot.bytes);
  }

  /** Views of the core's counts per aggregate and per site. */
  #aggs() {
    const c = this.core;
    c.counts();
    const b = c.x.memory.buffer;
    const [na, ns] = [this.#aggStack.length, this.#siteName.length];
    return {
      live: new Int32Array(b, c.array("aggLive"), na),
      created: new Float64Array(b, c.array("aggCreated"), na),
      siteLive: new Int32Array(b, c.array("siteLive"), ns),
      siteCreated: new Float64Array(b, c.array("siteCreated"), ns),
      siteExited: new Float64Array(b, c.array("siteExited"), ns),
      siteLifetime: new Float64Array(b, c.array("siteLifetime"), ns),
      siteBuckets: new Float64Array(b, c.array("siteBuckets"), ns * NB),
    };
  }

  /** Per process and creation stack: live and created counts (stacks with nothing live included). */
  stacks(): StackStats[] {
    const v = this.#aggs();
    const out: StackStats[] = [];
    for (const t of this.#byPid.values()) {
      for (const [stackId, a] of t.byStack) {
        const site = this.#siteName[this.#aggSite[a]];
        out.push({ pid: t.pid, stackId, site, live: v.live[a], created: v.created[a] });
      }
    }
    return out;
  }

  /** Per process and creation site: counts and the lifetime histogram. */
  sites(): SiteStats[] {
    const v = this.#aggs();
    const out: SiteStats[] = [];
    for (const t of this.#byPid.values()) {
      const top = new Map<number, number>();
      for (const a of t.byStack.values()) {
        const s = this.#aggSite[a];
        const best = top.get(s);
        if (v.live[a] > 0 && (best === undefined || v.live[a] > v.live[best])) top.set(s, a);
      }
      for (const [site, s] of t.bySite) {
        const best = top.get(s);
        out.push({
          pid: t.pid,
          site,
          live: v.siteLive[s],
          created: v.siteCreated[s],
          exited: v.siteExited[s],
          lifetimeSeconds: v.siteLifetime[s] / 1e9,
          buckets: Array.from(v.siteBuckets.subarray(s * NB, s * NB + NB)),
          topStackId: best === undefined ? 0 : this.#aggStack[best],
        });
      }
    }
    return out;
  }

  /**
   * The earliest creation time (ns) of a live goroutine per `pid site` key: a scan of every slot that
   * keeps a number per site (no string per goroutine: the page asks every second).
   */
  oldestBySite(): Map<string, number> {
    const v = this.#slots();
    const oldest = new Float64Array(this.#siteName.length).fill(Infinity);
    for (let at = 0; at < v.byteLength; at += Slot.bytes) {
      const agg = v.getInt32(at + Slot.agg, true);
      if (agg < 0) continue;
      const s = this.#aggSite[agg & ~Slot.adopted];
      const born = v.getFloat64(at + Slot.born, true);
      if (born < oldest[s]) oldest[s] = born;
    }
    const out = new Map<string, number>();
    for (const t of this.#byPid.values()) {
      for (const [name, s] of t.bySite) if (oldest[s] !== Infinity) out.set(t.pid + " " + name, oldest[s]);
    }
    return out;
  }

  /** The creation site of a stack id (as the constructor's `site` names it). */
  siteOfStack(stackId: number): string {
    return this.#siteFn(stackId);
  }

  /**
   * The stacks to keep when the stack tables evict: those live goroutines were created with (adopted
   * ones' included), over every process, and those the core's stack cache found since the last call
   * (in use, although the tables did not see it).
   */
  held(): Set<number> {
    const v = this.#aggs();
    const out = new Set<number>(this.core.takeUsed());
    for (let a = 0; a < this.#aggStack.length; a++) {
      if (this.#aggStack[a] !== 0 && v.live[a] > 0) out.add(this.#aggStack[a]);
    }
    return out;
  }

  /**
   * Forgets stacks with nothing live (evicted from the stack tables: their ids never come again), and
   * with them their created counts; their sites' counts stay.
   */
  forget(stackIds: readonly number[]): void {
    this.core.putIds(stackIds);
    this.core.x.forget_stacks(stackIds.length);
    const v = this.#aggs();
    for (const t of this.#byPid.values()) {
      for (const id of stackIds) {
        const a = t.byStack.get(id);
        if (a === undefined || v.live[a] > 0) continue;
        t.byStack.delete(id);
        this.#freeAgg(t.pid, id, a);
      }
    }
  }

  /** A stack's site: as a process that has seen it named it, else as the constructor's `site` does. */
  readonly #siteFn = (stackId: number): string => {
    const last = this.#last;
    const a = last?.byStack.get(stackId);
    if (a !== undefined) return this.#siteName[this.#aggSite[a]];
    for (const t of this.#byPid.values()) {
      const b = t.byStack.get(stackId);
      if (b !== undefined) return this.#siteName[this.#aggSite[b]];
    }
    return this.#site(stackId);
  };
}
