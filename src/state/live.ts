/**
 * Which goroutines are alive, per process, and what they add up to per creation stack and per creation
 * site: the tracer's state between a creation and its exit, read by the endpoint and the leak report.
 *
 * Memory: one live goroutine is a slot in five typed-array slabs (goid, creation time, pid, aggregate
 * index, adopted flag: 25 bytes) plus its entry in an open-addressing index (4 bytes, load <= 0.5): ~40 bytes with the
 * slack of doubling (scripts/bench-state measures it; test/state_test.ts holds it under 64). The slabs
 * grow to the peak and stay there. No object per goroutine, nothing allocated per event once grown: an
 * event costs a hash probe and a few array writes, its stack's aggregates found by a second probe (by
 * stack id: ids grow without end), its site's by index. A stack seen in a process costs it four numbers
 * and an index entry until the stack tables evict the stack ({@link LiveGoroutines.forget}).
 *
 * @module
 */

/**
 * How many exited goids to remember per process for telling repeated exits apart: one slot per goid
 * modulo this, so (goids being handed out in sequence) the last exits of about as many goroutines.
 */
const RECENT_EXITS = 4096;

/** {@link LiveGoroutines.exit} of a goroutine created before gmon attached (stack ids start at 1). */
export const PREEXISTING = 0;
/** {@link LiveGoroutines.exit} of a goroutine whose exit was already reported. */
export const REPEAT = -1;

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

/** Per-process aggregates, indexed by small local numbers so an event updates them without a lookup. */
class ProcessTable {
  readonly pid: number;
  live = 0;
  /**
   * Local stack index + 1 (0: empty) by stack id, open addressing (ids grow without end, and stacks
   * are forgotten once evicted: an array by id would grow with every id ever given).
   */
  #stackIndex = new Int32Array(64);
  /** Local indices of forgotten stacks, for reuse. */
  readonly #freeStacks: number[] = [];
  /** The last stack looked up and its local index: goroutines come in bursts from one stack. */
  #lastStackId = 0;
  #lastStack = -1;
  // Per stack seen in this process (id 0: a forgotten one's index, free).
  readonly stackIds: number[] = [];
  readonly stackLive: number[] = [];
  readonly stackCreated: number[] = [];
  readonly stackSite: number[] = [];
  // Per site seen in this process.
  readonly siteIndex = new Map<string, number>();
  readonly siteNames: string[] = [];
  readonly siteLive: number[] = [];
  readonly siteCreated: number[] = [];
  readonly siteExited: number[] = [];
  /** Sum of lifetimes, ns. */
  readonly siteLifetimeNs: number[] = [];
  /** NB non-cumulative bucket counts per site. */
  readonly siteBuckets: number[] = [];
  /** Recent exits, by goid modulo RECENT_EXITS: a set that forgets without bookkeeping. */
  readonly recent = new Float64Array(RECENT_EXITS).fill(-1);

  constructor(pid: number) {
    this.pid = pid;
  }

  /** The local stack index of `stackId`, made on first use (once per stack and process). */
  stackIndex(stackId: number, site: (stackId: number) => string): number {
    if (stackId === this.#lastStackId) return this.#lastStack;
    const pos = this.#probe(stackId);
    let i = this.#stackIndex[pos] - 1;
    if (i < 0) {
      i = this.#newStack(stackId, this.#siteOf(site(stackId)));
      this.#stackIndex[pos] = i + 1;
      if (2 * (this.stackIds.length - this.#freeStacks.length) > this.#stackIndex.length) this.#rehash();
    }
    this.#lastStackId = stackId;
    this.#lastStack = i;
    return i;
  }

  /** The local index of `stackId`, or -1 if this process has not seen it. */
  find(stackId: number): number {
    return this.#stackIndex[this.#probe(stackId)] - 1;
  }

  /** Forgets a stack with nothing live here (evicted: its id never comes again); its created count goes. */
  forget(stackId: number): void {
    const pos = this.#probe(stackId);
    const i = this.#stackIndex[pos] - 1;
    if (i < 0 || this.stackLive[i] > 0) return;
    this.#removeAt(pos);
    if (stackId === this.#lastStackId) this.#lastStackId = 0;
    this.stackIds[i] = 0;
    this.stackCreated[i] = 0;
    this.#freeStacks.push(i);
  }

  #newStack(stackId: number, site: number): number {
    const free = this.#freeStacks.pop();
    if (free !== undefined) {
      this.stackIds[free] = stackId;
      this.stackLive[free] = 0;
      this.stackCreated[free] = 0;
      this.stackSite[free] = site;
      return free;
    }
    this.stackIds.push(stackId);
    this.stackLive.push(0);
    this.stackCreated.push(0);
    this.stackSite.push(site);
    return this.stackIds.length - 1;
  }

  #siteOf(name: string): number {
    let s = this.siteIndex.get(name);
    if (s === undefined) {
      s = this.siteNames.length;
      this.siteIndex.set(name, s);
      this.siteNames.push(name);
      this.siteLive.push(0);
      this.siteCreated.push(0);
      this.siteExited.push(0);
      this.siteLifetimeNs.push(0);
      for (let b = 0; b < NB; b++) this.siteBuckets.push(0);
    }
    return s;
  }

  #home(stackId: number): number {
    const h = Math.imul(stackId, 0x9e3779b1);
    return (h ^ (h >>> 15)) & (this.#stackIndex.length - 1);
  }

  /** Where `stackId` is in the index, or the empty position where it would go. */
  #probe(stackId: number): number {
    const index = this.#stackIndex;
    const mask = index.length - 1;
    let i = this.#home(stackId);
    for (;;) {
      const e = index[i];
      if (e === 0 || this.stackIds[e - 1] === stackId) return i;
      i = (i + 1) & mask;
    }
  }

  /** Empties position `i`, shifting later entries of its cluster back (no tombstones). */
  #removeAt(i: number): void {
    const index = this.#stackIndex;
    const mask = index.length - 1;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = index[j];
      if (e === 0) break;
      const k = this.#home(this.stackIds[e - 1]);
      if (((j - k) & mask) >= ((j - i) & mask)) {
        index[i] = e;
        i = j;
      }
    }
    index[i] = 0;
  }

  #rehash(): void {
    this.#stackIndex = new Int32Array(this.#stackIndex.length * 2);
    for (let i = 0; i < this.stackIds.length; i++) {
      if (this.stackIds[i] !== 0) this.#stackIndex[this.#probe(this.stackIds[i])] = i + 1;
    }
  }

  remember(goid: number): void {
    this.recent[(goid >>> 0) & (RECENT_EXITS - 1)] = goid;
  }

  recentlyExited(goid: number): boolean {
    return this.recent[(goid >>> 0) & (RECENT_EXITS - 1)] === goid;
  }
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

const NO_PID = -1;

/** Live goroutines by pid, with per-stack and per-site aggregates and the counts the summary reports. */
export class LiveGoroutines {
  /** Creations seen (a goid reported twice counts once). */
  created = 0;
  /** Exits of goroutines seen created. */
  exited = 0;
  /** Exits of goroutines created before gmon attached. */
  preexisting = 0;
  /** The lifetime (ns) of the goroutine of the last {@link exit} that returned a stack id. */
  lastLifetimeNs = 0;

  readonly #site: (stackId: number) => string;
  readonly #byPid = new Map<number, ProcessTable>();
  #lastPid = NO_PID;
  #last: ProcessTable | undefined;
  #live = 0;

  // Slabs, one slot per live goroutine. #agg >= 0: the slot's local stack index in its process;
  // < 0: free, -2 - #agg is the next free slot (-1 ends the list).
  #goid = new Float64Array(1024);
  #born = new Float64Array(1024);
  #pid = new Int32Array(1024);
  #agg = new Int32Array(1024);
  /** 1: adopted (alive before gmon attached; #born is when gmon found it). */
  #adopted = new Uint8Array(1024);
  /** Slots ever used: [0, #top). */
  #top = 0;
  #free = -1;
  /** Open addressing, linear probing: slot + 1, 0 for empty. */
  #index = new Int32Array(2048);
  #mask = 2047;
  /** 32 - log2 of the index's size: a hash's top bits are its position. */
  #shift = 21;

  /**
   * @param site names the creation site of a stack id (see {@link siteOf}); asked once per stack.
   */
  constructor(site: (stackId: number) => string = () => "?") {
    this.#site = site;
  }

  /**
   * Records a creation at `timeNs` (CLOCK_MONOTONIC) with creation stack `stackId`; false if that
   * goroutine was already live (a repeated report).
   */
  create(pid: number, goid: number, stackId: number, timeNs = 0): boolean {
    return this.#insert(pid, goid, stackId, timeNs, true);
  }

  #insert(pid: number, goid: number, stackId: number, timeNs: number, seenCreated: boolean): boolean {
    const pos = this.#probe(pid, goid);
    if (this.#index[pos] !== 0) return false;
    const t = this.#table(pid);
    const a = t.stackIndex(stackId, this.#siteFn);
    const slot = this.#alloc();
    this.#goid[slot] = goid;
    this.#born[slot] = timeNs;
    this.#pid[slot] = pid;
    this.#agg[slot] = a;
    this.#adopted[slot] = seenCreated ? 0 : 1;
    this.#index[pos] = slot + 1;
    t.stackLive[a]++;
    const s = t.stackSite[a];
    t.siteLive[s]++;
    if (seenCreated) {
      t.stackCreated[a]++;
      t.siteCreated[s]++;
      this.created++;
    }
    t.live++;
    this.#live++;
    // Keep the load at most 1/2.
    if (this.#live * 2 > this.#mask) this.#rehash(this.#index.length * 2);
    return true;
  }

  /**
   * Records a goroutine that was already alive when gmon attached (found by reading the process), under
   * `stackId`: the stack of its go statement (g.gopc). It counts as live at its site but not as created;
   * its creation time is unknown: `sinceNs`, when gmon found it, stands in as a lower bound of its age.
   * False if that goroutine is already known or just exited.
   */
  adopt(pid: number, goid: number, stackId: number, sinceNs = 0): boolean {
    if (this.#table(pid).recentlyExited(goid)) return false;
    return this.#insert(pid, goid, stackId, sinceNs, false);
  }

  /**
   * Records an exit at `timeNs`. Returns the creation stack id (and sets {@link lastLifetimeNs});
   * PREEXISTING for a goroutine created before gmon attached; REPEAT for a second report of a recent
   * exit (goexit1 can restart after a preemption, ~1 in 10^6 exits), which callers ignore.
   */
  exit(pid: number, goid: number, timeNs = 0): number {
    const t = this.#table(pid);
    const pos = this.#probe(pid, goid);
    const entry = this.#index[pos];
    if (entry === 0) {
      if (t.recentlyExited(goid)) return REPEAT;
      this.preexisting++;
      return PREEXISTING;
    }
    const slot = entry - 1;
    const a = this.#agg[slot];
    const lifetime = Math.max(0, timeNs - this.#born[slot]);
    const adopted = this.#adopted[slot] === 1;
    this.#removeAt(pos);
    this.#release(slot);
    t.stackLive[a]--;
    const s = t.stackSite[a];
    t.siteLive[s]--;
    if (adopted) {
      // Adopted (alive before gmon attached): its lifetime is unknown.
      t.live--;
      this.#live--;
      this.preexisting++;
      t.remember(goid);
      return PREEXISTING;
    }
    t.siteExited[s]++;
    t.siteLifetimeNs[s] += lifetime;
    let b = 0;
    while (b < NB - 1 && lifetime > BUCKET_NS[b]) b++;
    t.siteBuckets[s * NB + b]++;
    t.live--;
    this.exited++;
    this.#live--;
    // Bounded: a repeat comes right after the first report.
    t.remember(goid);
    this.lastLifetimeNs = lifetime;
    return t.stackIds[a];
  }

  /** Goroutines alive now, over every process. */
  get live(): number {
    return this.#live;
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
    const n = t.live;
    if (n > 0) {
      for (let slot = 0; slot < this.#top; slot++) {
        if (this.#agg[slot] < 0 || this.#pid[slot] !== pid) continue;
        this.#removeAt(this.#probe(pid, this.#goid[slot]));
        this.#release(slot);
        this.#live--;
      }
    }
    this.#byPid.delete(pid);
    if (this.#lastPid === pid) {
      this.#lastPid = NO_PID;
      this.#last = undefined;
    }
    return n;
  }

  /**
   * Calls `each` for every live goroutine, in no particular order; `adopted`: alive before gmon
   * attached, `bornNs` then being when gmon found it. Don't change the state from it.
   */
  forEachLive(
    each: (pid: number, goid: number, bornNs: number, stackId: number, adopted: boolean) => void,
  ): void {
    let t: ProcessTable | undefined;
    for (let slot = 0; slot < this.#top; slot++) {
      const a = this.#agg[slot];
      if (a < 0) continue;
      const pid = this.#pid[slot];
      if (t?.pid !== pid) t = this.#byPid.get(pid)!;
      each(pid, this.#goid[slot], this.#born[slot], t.stackIds[a], this.#adopted[slot] === 1);
    }
  }

  /** Per process and creation stack: live and created counts (stacks with nothing live included). */
  stacks(): StackStats[] {
    const out: StackStats[] = [];
    for (const t of this.#byPid.values()) {
      for (let a = 0; a < t.stackIds.length; a++) {
        if (t.stackIds[a] === 0) continue;
        out.push({
          pid: t.pid,
          stackId: t.stackIds[a],
          site: t.siteNames[t.stackSite[a]],
          live: t.stackLive[a],
          created: t.stackCreated[a],
        });
      }
    }
    return out;
  }

  /** Per process and creation site: counts and the lifetime histogram. */
  sites(): SiteStats[] {
    const out: SiteStats[] = [];
    for (const t of this.#byPid.values()) {
      const top = new Array<number>(t.siteNames.length).fill(-1);
      for (let a = 0; a < t.stackIds.length; a++) {
        const s = t.stackSite[a];
        if (t.stackLive[a] > 0 && (top[s] < 0 || t.stackLive[a] > t.stackLive[top[s]])) top[s] = a;
      }
      for (let s = 0; s < t.siteNames.length; s++) {
        out.push({
          pid: t.pid,
          site: t.siteNames[s],
          live: t.siteLive[s],
          created: t.siteCreated[s],
          exited: t.siteExited[s],
          lifetimeSeconds: t.siteLifetimeNs[s] / 1e9,
          buckets: t.siteBuckets.slice(s * NB, s * NB + NB),
          topStackId: top[s] < 0 ? 0 : t.stackIds[top[s]],
        });
      }
    }
    return out;
  }

  /**
   * The earliest creation time (ns) of a live goroutine per `pid site` key: a scan of every slot that
   * keeps a number per process and site (no string per goroutine: the page asks every second).
   */
  oldestBySite(): Map<string, number> {
    const oldest = new Map<ProcessTable, Float64Array>();
    let t: ProcessTable | undefined;
    let o: Float64Array = new Float64Array(0);
    for (let slot = 0; slot < this.#top; slot++) {
      const a = this.#agg[slot];
      if (a < 0) continue;
      const pid = this.#pid[slot];
      if (t?.pid !== pid) {
        t = this.#byPid.get(pid)!;
        let found = oldest.get(t);
        if (found === undefined) oldest.set(t, found = new Float64Array(t.siteNames.length).fill(Infinity));
        o = found;
      }
      const s = t.stackSite[a];
      if (this.#born[slot] < o[s]) o[s] = this.#born[slot];
    }
    const out = new Map<string, number>();
    for (const [table, born] of oldest) {
      born.forEach((ns, s) => {
        if (ns !== Infinity) out.set(table.pid + " " + table.siteNames[s], ns);
      });
    }
    return out;
  }

  /** The creation site of a stack id (as the constructor's `site` names it). */
  siteOfStack(stackId: number): string {
    return this.#siteFn(stackId);
  }

  /** The stacks live goroutines were created with (adopted ones' included), over every process. */
  held(): Set<number> {
    const out = new Set<number>();
    for (const t of this.#byPid.values()) {
      for (let a = 0; a < t.stackIds.length; a++) if (t.stackLive[a] > 0) out.add(t.stackIds[a]);
    }
    return out;
  }

  /**
   * Forgets stacks with nothing live (evicted from the stack tables: their ids never come again), and
   * with them their created counts; their sites' counts stay.
   */
  forget(stackIds: readonly number[]): void {
    for (const t of this.#byPid.values()) for (const id of stackIds) t.forget(id);
  }

  /** Bytes held by the slabs and the index (what grows with the number of live goroutines). */
  get slabBytes(): number {
    return this.#goid.byteLength + this.#born.byteLength + this.#pid.byteLength + this.#agg.byteLength +
      this.#adopted.byteLength + this.#index.byteLength;
  }

  /** A stack's site: as a process that has seen it named it, else as the constructor's `site` does. */
  readonly #siteFn = (stackId: number): string => {
    const last = this.#last;
    if (last !== undefined) {
      const a = last.find(stackId);
      if (a >= 0) return last.siteNames[last.stackSite[a]];
    }
    for (const t of this.#byPid.values()) {
      const a = t.find(stackId);
      if (a >= 0) return t.siteNames[t.stackSite[a]];
    }
    return this.#site(stackId);
  };

  #table(pid: number): ProcessTable {
    if (pid === this.#lastPid) return this.#last!;
    let t = this.#byPid.get(pid);
    if (t === undefined) {
      t = new ProcessTable(pid);
      this.#byPid.set(pid, t);
    }
    this.#lastPid = pid;
    this.#last = t;
    return t;
  }

  /**
   * Fibonacci hashing, the product's top bits: a process's goids are handed out in sequence, and
   * consecutive keys land far apart. One multiply, where a mixing hash of both of a goid's halves was
   * ~10% of the table's time; the high half (past 2^32 goroutines) is folded in only when there is one.
   */
  #home(pid: number, goid: number): number {
    const high = goid > 0xffff_ffff ? Math.floor(goid / 0x1_0000_0000) : 0;
    return Math.imul((goid ^ high ^ Math.imul(pid, 0x85ebca6b)) | 0, 0x9e3779b1) >>> this.#shift;
  }

  /** Where (pid, goid) is in the index, or the empty position where it would go. */
  #probe(pid: number, goid: number): number {
    const index = this.#index;
    const mask = this.#mask;
    let i = this.#home(pid, goid);
    for (;;) {
      const e = index[i];
      if (e === 0) return i;
      if (this.#goid[e - 1] === goid && this.#pid[e - 1] === pid) return i;
      i = (i + 1) & mask;
    }
  }

  /** Empties position `i` of the index, shifting later entries of its cluster back (no tombstones). */
  #removeAt(i: number): void {
    const index = this.#index;
    const mask = this.#mask;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const e = index[j];
      if (e === 0) break;
      const k = this.#home(this.#pid[e - 1], this.#goid[e - 1]);
      // The entry at j may move to i if i lies on its probe path from k.
      if (((j - k) & mask) >= ((j - i) & mask)) {
        index[i] = e;
        i = j;
      }
    }
    index[i] = 0;
  }

  #rehash(size: number): void {
    this.#index = new Int32Array(size);
    this.#mask = size - 1;
    this.#shift = 32 - Math.log2(size);
    for (let slot = 0; slot < this.#top; slot++) {
      if (this.#agg[slot] < 0) continue;
      this.#index[this.#probe(this.#pid[slot], this.#goid[slot])] = slot + 1;
    }
  }

  #alloc(): number {
    if (this.#free >= 0) {
      const slot = this.#free;
      this.#free = -2 - this.#agg[slot];
      return slot;
    }
    if (this.#top === this.#agg.length) {
      const n = this.#agg.length * 2;
      this.#goid = grow(this.#goid, new Float64Array(n));
      this.#born = grow(this.#born, new Float64Array(n));
      this.#pid = grow(this.#pid, new Int32Array(n));
      this.#agg = grow(this.#agg, new Int32Array(n));
      this.#adopted = grow(this.#adopted, new Uint8Array(n));
    }
    return this.#top++;
  }

  #release(slot: number): void {
    this.#agg[slot] = -2 - this.#free;
    this.#free = slot;
  }
}

function grow<T extends Float64Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}
