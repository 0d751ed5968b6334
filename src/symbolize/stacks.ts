/**
 * Creation stacks, interned: each distinct stack gets one id and is symbolized once, so an event costs
 * a look at a small cache (or a hash of its PCs) whatever the stack's depth.
 *
 * Memory is what a program's stacks share, plus a little per stack, and bounded: frames are interned
 * (one string per distinct `func at file:line`, encoded once for lines, one list of frame ids per
 * distinct PC), a stack is its PC ids in a shared slab plus a few numbers in typed arrays and a small
 * object, and what is made from its text (the frames as strings, its encoded attributes) is made when
 * asked for, never kept here. Beyond {@link STACK_CAP} stacks, those with no live goroutine that were
 * not used since the last eviction are evicted; their ids are never given again, and one seen again is
 * interned anew (its PCs' frames are still known). scripts/bench-state measures bytes per stack.
 *
 * @module
 */
import { type GoroutineRecord, Layout } from "../bpf/record.ts";
import { ByteBuffer, utf8 } from "../log/bytes.ts";
import { type Encoding, TEXT } from "../log/slog.ts";
import type { Frame } from "../target/wasm.ts";

/** Symbolizes PCs (file addresses, already adjusted): one Frame[] per PC, innermost first. */
export type Symbolizer = (pcs: readonly number[]) => Frame[][];

/**
 * Frames that come from where the creation probe sits rather than from the program: the systemstack
 * switch newproc makes to create the goroutine. Hidden from the top of creation stacks so that they
 * start at runtime.newproc, as Go's own "created by" does.
 */
const PROBE_SITE_FRAMES: ReadonlySet<string> = new Set([
  "runtime.newproc.func1",
  "runtime.newcoro.func1",
  "runtime.debugCallWrap.func1",
  "runtime.synctestRun.func2",
  "runtime.newproc1",
  "runtime.systemstack",
  "runtime.systemstack_switch",
]);

/**
 * Stacks kept before those with no live goroutine are evicted. A program's go statements reached by
 * its call paths make hundreds to a few thousand distinct stacks, which this keeps, ids stable, for as
 * long as they are used at all; only a program whose calls combine without end (recursion, generated
 * paths) goes beyond, and then the tables hold at most the cap or twice the stacks of live goroutines
 * (see StackRegistry's sweeps), at ~0.5 KB a stack, whatever it runs for.
 */
export const STACK_CAP = 1 << 15;

/** An entry's flag: interned again since the last sweep, which keeps it (once). */
const USED = 1;
/** An entry's flag: never evicted, a stack the tracer holds on to (an exit probe's), till released. */
const PINNED = 2;

/** Slots of StackTable's cache of recently interned stacks. */
const RECENT = 64;
/** 32-bit words of the longest stack a record holds. */
const MAX_WORDS = 2 * Layout.maxFrames;

/** A symbolized stack, as its users see it. */
export interface StackEntry {
  /** Never given to another stack, even once this one is evicted. */
  readonly id: number;
  /**
   * A small index, dense over the stacks interned now: per-stack caches (the event lines' templates)
   * are arrays indexed by it. Reused once the stack is evicted: such caches check the id.
   */
  readonly slot: number;
  /** The frames, `func at file:line`, innermost first (a new array at each read). */
  readonly frames: string[];
  /**
   * The physical frames behind {@link StackEntry.frames}: each one's address (in the file, as looked up:
   * a return address less one) and how many of the frames, inlined calls first, it stands for.
   */
  readonly pcs: { addr: number; frames: number }[];
  /**
   * The stack's attributes, encoded in the table's format at each read: `stack_id` then the frames as
   * `slog.Group("stack", "0", f0, "1", f1, ...)`: ` stack_id=N stack.0="..." stack.K="..."` in text,
   * `,"stack_id":N,"stack":{"0":"...","K":"..."}` in JSON (no `stack` at all when there are no frames).
   */
  readonly attrs: string;
  /**
   * {@link StackEntry.attrs} as UTF-8, what lines are assembled from: a view of bytes the table reuses
   * at its next such read, to be copied before.
   */
  readonly attrBytes: Uint8Array;
}

/** What tells the registry which stacks are in use, and hears which it evicted. */
export interface StackPins {
  /** The ids of the stacks some live goroutine was created with (asked once per sweep). */
  held(): ReadonlySet<number>;
  /** These stacks were evicted: their ids will never be seen again. */
  forget(stackIds: readonly number[]): void;
}

/** A stack of a table: its text is read from the table when asked for. */
class Stack implements StackEntry {
  readonly id: number;
  readonly slot: number;
  /** Its index in its table's entry arrays; -1 once evicted. */
  local: number;
  readonly table: StackTable;

  constructor(id: number, slot: number, local: number, table: StackTable) {
    this.id = id;
    this.slot = slot;
    this.local = local;
    this.table = table;
  }

  get frames(): string[] {
    return this.table.framesOf(this);
  }

  get pcs(): { addr: number; frames: number }[] {
    return this.table.pcsOf(this);
  }

  get attrs(): string {
    return this.table.attrsOf(this);
  }

  get attrBytes(): Uint8Array {
    return this.table.attrBytesOf(this);
  }
}

/**
 * Stack ids shared by the stack tables of several executables (one per executable: their PCs mean
 * different things), so that an id names one stack whichever table made it; and the one count of
 * stacks that eviction bounds, over every table.
 */
export class StackRegistry {
  readonly #cap: number;
  #nextId = 1;
  readonly #byId = new Map<number, Stack>();
  #slots = 0;
  readonly #freeSlots: number[] = [];
  /** Stacks beyond which the next new one starts a sweep. */
  #limit: number;
  readonly #tables = new Set<StackTable>();
  #pins: StackPins | null = null;

  /** `cap`: stacks kept before evicting (tests lower it). */
  constructor(cap = STACK_CAP) {
    this.#cap = cap;
    this.#limit = cap;
  }

  /**
   * Sweeps keep the stacks `pins` holds (those of live goroutines) and tell it which they evicted.
   * Without pins, only stacks in use since the last sweep and pinned ones are kept.
   */
  evictWith(pins: StackPins): void {
    this.#pins = pins;
  }

  /** The stack with this id; undefined if it was evicted (or never was). */
  get(id: number): StackEntry | undefined {
    return this.#byId.get(id);
  }

  /** Stacks interned now. */
  get size(): number {
    return this.#byId.size;
  }

  /** A new stack of `table`, at its entry index `local` (for StackTable). */
  add(table: StackTable, local: number): Stack {
    const stack = new Stack(this.#nextId++, this.#freeSlots.pop() ?? this.#slots++, local, table);
    this.#byId.set(stack.id, stack);
    this.#tables.add(table);
    return stack;
  }

  /**
   * After a new stack (`current`, about to be used): beyond the limit, evicts the stacks with no live
   * goroutine, not pinned and not used since the last sweep. The next sweep waits until the stacks
   * kept have doubled (or reached the cap): a sweep's cost is paid for by the stacks made since.
   */
  settle(current: Stack): void {
    if (this.#byId.size <= this.#limit) return;
    const pins = this.#pins;
    const held = pins?.held();
    const keep = (s: Stack) => s === current || (held?.has(s.id) ?? false);
    const evicted: number[] = [];
    for (const table of this.#tables) {
      for (const s of table.sweep(keep)) {
        this.#byId.delete(s.id);
        this.#freeSlots.push(s.slot);
        evicted.push(s.id);
      }
      if (table.size === 0) this.#tables.delete(table);
    }
    this.#limit = Math.max(this.#cap, 2 * this.#byId.size);
    if (evicted.length > 0) pins?.forget(evicted);
  }
}

/** Interns creation stacks from records and fixed stacks from PCs. */
export class StackTable {
  readonly #symbolize: Symbolizer;
  readonly #enc: Encoding;
  readonly #registry: StackRegistry;

  // Frames: one string per distinct `func at file:line`, by id; whether it is a probe site's.
  readonly #frameOf = new Map<string, number>();
  readonly #frameText: string[] = [];
  readonly #frameHidden: boolean[] = [];
  /** Each frame's text encoded as a value of the table's format, once asked for. */
  readonly #frameValue: (Uint8Array | undefined)[] = [];
  /** Member `i`'s prefix in the `stack` group, encoded once per index. */
  readonly #memberPrefix: Uint8Array[] = [];
  readonly #groupEnd: Uint8Array;
  /** ` stack_id=` / `,"stack_id":`, before the id (`attr("stack_id", id)` is the key and the number). */
  readonly #idKey: Uint8Array;
  /** Where {@link StackTable.attrBytesOf} assembles. */
  readonly #attrBytes = new ByteBuffer(4096);

  // PCs, by id: the file address looked up, and its frame ids (#pcFrameIds[first, first + count)).
  // Kept for the table's life: they are bounded by the program's code, not by how its calls combine.
  readonly #pcOf = new Map<number, number>();
  #pcKey = new Float64Array(256);
  #pcFirst = new Int32Array(256);
  #pcCount = new Int32Array(256);
  #pcs = 0;
  #pcFrameIds = new Int32Array(1024);
  #pcFrameTop = 0;

  // Raw stacks (PCs as a record gives them, with the load bias), by index: their PC ids at
  // #slab[start, start + len), the first `exact` of them instruction (not return) addresses; the
  // entry they are. Different raw stacks may be one entry: they differ in hidden frames, or in PCs of
  // the same lines.
  #rawHash = new Int32Array(256);
  #rawBias = new Float64Array(256);
  #rawStart = new Int32Array(256);
  #rawLen = new Uint8Array(256);
  #rawExact = new Uint8Array(256);
  #rawEntry = new Int32Array(256);
  #raws = 0;
  #slab = new Int32Array(4096);
  #slabTop = 0;
  /** Open addressing by hash, linear probing: raw index + 1, 0 for empty; load <= 1/2. */
  #rawIndex = new Int32Array(512);

  // Entries (distinct frame lists), by local index: the raw stack that shows them, the hidden frames
  // at its top, the hash of the rest; the Stack object users hold.
  #entryRaw = new Int32Array(256);
  #entrySkip = new Uint8Array(256);
  #entryHash = new Int32Array(256);
  /** {@link USED} and {@link PINNED}. */
  #entryFlags = new Uint8Array(256);
  readonly #entries: Stack[] = [];
  /** Open addressing by frame hash: local index + 1. */
  #textIndex = new Int32Array(512);

  // A few stacks make most creations: a copy of the last one seen in each slot answers them by
  // comparing words in place, without hashing the whole stack.
  readonly #recentWords = new Uint32Array(RECENT * MAX_WORDS);
  readonly #recentShape = new Int32Array(RECENT);
  readonly #recentBias = new Float64Array(RECENT);
  readonly #recentEntry: (Stack | undefined)[] = new Array(RECENT);

  /** Words of the stacks interned from PCs (fixed and created ones). */
  readonly #scratch = new Uint32Array(MAX_WORDS);
  /** Frame ids of a stack being compared, and of the one it is compared with. */
  #ids = new Int32Array(1024);
  #otherIds = new Int32Array(1024);

  /**
   * `enc`: the format {@link StackEntry.attrs} are encoded in (that of the event lines); `registry`:
   * where ids come from, shared with the other executables' tables.
   */
  constructor(symbolize: Symbolizer, enc: Encoding = TEXT, registry: StackRegistry = new StackRegistry()) {
    this.#symbolize = symbolize;
    this.#enc = enc;
    this.#registry = registry;
    this.#groupEnd = utf8(enc.groupEnd);
    this.#idKey = utf8(enc.key("stack_id"));
  }

  /**
   * The stack of a creation record from a process whose load bias is `bias` (0 unless PIE). Frames
   * are return addresses, but for the first when `firstExact` (a probe on an instruction, not a return).
   */
  intern(rec: GoroutineRecord, bias: number, firstExact: boolean): StackEntry {
    const n = rec.nframes;
    const w = rec.words;
    const from = rec.framesWord;
    const shape = n * 256 + (firstExact && n > 0 ? 1 : 0);
    const slot = (n > 3 ? w[from + 4] ^ (w[from + 6] << 1) ^ n : n) & (RECENT - 1);
    const recent = this.#recentEntry[slot];
    if (
      recent !== undefined && this.#recentShape[slot] === shape && this.#recentBias[slot] === bias &&
      sameWords(this.#recentWords, slot * MAX_WORDS, w, from, 2 * n)
    ) {
      this.#entryFlags[recent.local] |= USED;
      return recent;
    }
    const stack = this.#lookup(w, from, n, bias, shape & 255);
    this.#remember(slot, w, from, shape, bias, stack);
    return stack;
  }

  /**
   * The creation stack of a goroutine gmon did not see created (alive when it attached): just its go
   * statement, from g.gopc (a file address: the return address of the call that created it).
   */
  created(gopc: number): StackEntry {
    return this.#ofPcs(gopc === 0 ? [] : [gopc], 0);
  }

  /**
   * A stack known up front, e.g. the exit probe's one frame at an exact (not return) address. Never
   * evicted: its holder may use it at any time.
   */
  fixed(pcs: readonly number[]): StackEntry {
    const stack = this.#ofPcs(pcs, pcs.length);
    this.#entryFlags[stack.local] |= PINNED;
    return stack;
  }

  /**
   * Its executable is no longer traced (closed, or opened anew): its fixed stacks are unpinned, so that
   * sweeps take them too, and then the table, once no live goroutine holds them. In host-wide mode
   * programs come and go without end.
   */
  release(): void {
    for (let e = 0; e < this.#entries.length; e++) this.#entryFlags[e] &= ~PINNED;
  }

  /** The stack with this id, whichever table sharing the registry made it; undefined once evicted. */
  get(id: number): StackEntry | undefined {
    return this.#registry.get(id);
  }

  /** Entries in this table now. */
  get size(): number {
    return this.#entries.length;
  }

  /** The frames of one of this table's stacks (its {@link StackEntry.frames}); none once evicted. */
  framesOf(stack: Stack): string[] {
    const n = this.#shownIds(stack);
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.#frameText[this.#ids[i]]);
    return out;
  }

  /** The physical frames of one of this table's stacks (its {@link StackEntry.pcs}). */
  pcsOf(stack: Stack): { addr: number; frames: number }[] {
    if (stack.local < 0) return [];
    const r = this.#entryRaw[stack.local];
    const skip = this.#entrySkip[stack.local];
    const out: { addr: number; frames: number }[] = [];
    // The physical frames left once the hidden ones are skipped (which may cut into the first).
    let seen = 0;
    for (let i = 0; i < this.#rawLen[r]; i++) {
      const pc = this.#slab[this.#rawStart[r] + i];
      const n = this.#pcCount[pc];
      const kept = Math.min(n, seen + n - skip);
      if (kept > 0) out.push({ addr: this.#pcKey[pc], frames: kept });
      seen += n;
    }
    return out;
  }

  /** The encoded attributes of one of this table's stacks (its {@link StackEntry.attrs}). */
  attrsOf(stack: Stack): string {
    return new TextDecoder().decode(this.attrBytesOf(stack));
  }

  /**
   * The encoded attributes of one of this table's stacks as UTF-8 (its {@link StackEntry.attrBytes}),
   * assembled from pieces encoded once (frames are shared by many stacks), in bytes reused at the next
   * call.
   */
  attrBytesOf(stack: Stack): Uint8Array {
    const n = this.#shownIds(stack);
    let need = this.#idKey.length + 16 + this.#groupEnd.length;
    for (let i = 0; i < n; i++) need += this.#prefix(i).length + this.#value(this.#ids[i]).length;
    const out = this.#attrBytes;
    out.clear();
    out.reserve(need);
    out.put(this.#idKey);
    out.uint(stack.id);
    for (let i = 0; i < n; i++) {
      out.put(this.#memberPrefix[i]);
      out.put(this.#frameValue[this.#ids[i]]!);
    }
    if (n > 0) out.put(this.#groupEnd);
    return out.view();
  }

  /** Puts the frame ids `stack` shows at the start of #ids (hidden ones skipped); their count. */
  #shownIds(stack: Stack): number {
    if (stack.local < 0) return 0;
    const r = this.#entryRaw[stack.local];
    this.#roomForIds(r);
    const n = this.#frameIdsOf(r, this.#ids);
    const skip = this.#entrySkip[stack.local];
    this.#ids.copyWithin(0, skip, n);
    return n - skip;
  }

  #prefix(i: number): Uint8Array {
    while (this.#memberPrefix.length <= i) {
      const k = this.#memberPrefix.length;
      this.#memberPrefix.push(utf8(this.#enc.member("stack", String(k), k === 0)));
    }
    return this.#memberPrefix[i];
  }

  #value(frame: number): Uint8Array {
    return this.#frameValue[frame] ??= utf8(this.#enc.value(this.#frameText[frame]));
  }

  /**
   * Evicts the entries neither pinned, nor used since the last sweep, nor kept by `keep` (and their raw
   * stacks), compacting what stays; clears the kept ones' use. Returns the evicted (for StackRegistry).
   */
  sweep(keep: (s: Stack) => boolean): Stack[] {
    const evicted: Stack[] = [];
    const count = this.#entries.length;
    const moved = new Int32Array(count).fill(-1);
    let m = 0;
    for (let e = 0; e < count; e++) {
      const s = this.#entries[e];
      const flags = this.#entryFlags[e];
      if ((flags & (USED | PINNED)) === 0 && !keep(s)) {
        s.local = -1;
        evicted.push(s);
        continue;
      }
      this.#entryFlags[m] = flags & ~USED;
      s.local = m;
      moved[e] = m;
      this.#entries[m] = s;
      this.#entryRaw[m] = this.#entryRaw[e];
      this.#entrySkip[m] = this.#entrySkip[e];
      this.#entryHash[m] = this.#entryHash[e];
      m++;
    }
    if (evicted.length === 0) return evicted;
    this.#entries.length = m;
    this.#compactRaws(moved);
    this.#reindex();
    this.#recentEntry.fill(undefined);
    return evicted;
  }

  /** Keeps the raw stacks of entries kept (`moved`: old entry index -> new, -1 if evicted). */
  #compactRaws(moved: Int32Array): void {
    const newRaw = new Int32Array(this.#raws).fill(-1);
    let top = 0;
    let k = 0;
    for (let r = 0; r < this.#raws; r++) {
      const e = moved[this.#rawEntry[r]];
      if (e < 0) continue;
      const start = this.#rawStart[r];
      const len = this.#rawLen[r];
      // Raw stacks are in slab order: each moves down, if at all.
      this.#slab.copyWithin(top, start, start + len);
      this.#rawStart[k] = top;
      this.#rawLen[k] = len;
      this.#rawHash[k] = this.#rawHash[r];
      this.#rawBias[k] = this.#rawBias[r];
      this.#rawExact[k] = this.#rawExact[r];
      this.#rawEntry[k] = e;
      newRaw[r] = k;
      top += len;
      k++;
    }
    this.#raws = k;
    this.#slabTop = top;
    for (let e = 0; e < this.#entries.length; e++) this.#entryRaw[e] = newRaw[this.#entryRaw[e]];
  }

  /** Rebuilds both hash indexes, sized for what is kept. */
  #reindex(): void {
    this.#rawIndex = new Int32Array(indexSize(this.#raws));
    for (let r = 0; r < this.#raws; r++) {
      this.#rawIndex[probeFree(this.#rawIndex, this.#rawHash[r])] = r + 1;
    }
    this.#textIndex = new Int32Array(indexSize(this.#entries.length));
    for (let e = 0; e < this.#entries.length; e++) {
      this.#textIndex[probeFree(this.#textIndex, this.#entryHash[e])] = e + 1;
    }
  }

  /** The stack of `pcs` (file addresses), the first `exact` of them instruction addresses. */
  #ofPcs(pcs: readonly number[], exact: number): Stack {
    const w = this.#scratch;
    for (let i = 0; i < pcs.length; i++) {
      w[2 * i] = pcs[i] % 0x1_0000_0000;
      w[2 * i + 1] = Math.floor(pcs[i] / 0x1_0000_0000);
    }
    return this.#lookup(w, 0, pcs.length, 0, exact);
  }

  /** Copies a stack into the recent cache's `slot`. */
  #remember(slot: number, w: Uint32Array, from: number, shape: number, bias: number, stack: Stack): void {
    const words = this.#recentWords;
    const at = slot * MAX_WORDS;
    const n = 2 * (shape >>> 8);
    for (let i = 0; i < n; i++) words[at + i] = w[from + i];
    this.#recentShape[slot] = shape;
    this.#recentBias[slot] = bias;
    this.#recentEntry[slot] = stack;
  }

  /** The stack of the `n` frames at `w[from]` by their hash; a new one if not seen. */
  #lookup(w: Uint32Array, from: number, n: number, bias: number, exact: number): Stack {
    let h = Math.imul(0x811c9dc5 ^ (n * 256 + exact), 0x01000193) ^ (bias / 4096);
    for (let i = from; i < from + 2 * n; i++) h = Math.imul(h ^ w[i], 0x01000193);
    const index = this.#rawIndex;
    const mask = index.length - 1;
    for (let i = mix(h) & mask;; i = (i + 1) & mask) {
      const r = index[i] - 1;
      if (r < 0) break;
      if (this.#rawHash[r] === h && this.#sameRaw(r, w, from, n, bias, exact)) {
        const e = this.#rawEntry[r];
        this.#entryFlags[e] |= USED;
        return this.#entries[e];
      }
    }
    const r = this.#addRaw(w, from, n, bias, exact, h);
    const stack = this.#entryOf(r);
    this.#rawEntry[r] = stack.local;
    this.#registry.settle(stack);
    return stack;
  }

  /** Whether raw stack `r` is the `n` frames at `w[from]` (of a process with load bias `bias`). */
  #sameRaw(r: number, w: Uint32Array, from: number, n: number, bias: number, exact: number): boolean {
    if (this.#rawLen[r] !== n || this.#rawExact[r] !== exact || this.#rawBias[r] !== bias) return false;
    const slab = this.#slab;
    const start = this.#rawStart[r];
    for (let i = 0; i < n; i++) {
      const pc = this.#pcKey[slab[start + i]] + (i < exact ? 0 : 1) + bias;
      if (pc !== w[from + 2 * i] + w[from + 2 * i + 1] * 0x1_0000_0000) return false;
    }
    return true;
  }

  /** Stores a new raw stack (symbolizing the PCs not seen yet); returns its index. */
  #addRaw(w: Uint32Array, from: number, n: number, bias: number, exact: number, h: number): number {
    const r = this.#raws++;
    if (r === this.#rawHash.length) this.#growRaws();
    // The slab is most of a stack's bytes: it grows by halves, not doubling, to leave less unused.
    if (this.#slabTop + n > this.#slab.length) this.#slab = grown(this.#slab, this.#slabTop + n, 1.5);
    const start = this.#slabTop;
    if (!this.#pcIds(w, from, n, bias, exact, start)) {
      this.#symbolizeMissing(w, from, n, bias, exact);
      this.#pcIds(w, from, n, bias, exact, start);
    }
    this.#slabTop += n;
    this.#rawHash[r] = h;
    this.#rawBias[r] = bias;
    this.#rawStart[r] = start;
    this.#rawLen[r] = n;
    this.#rawExact[r] = exact;
    if (2 * this.#raws > this.#rawIndex.length) {
      this.#rawIndex = rehashed(this.#rawIndex, this.#rawHash);
    }
    this.#rawIndex[probeFree(this.#rawIndex, h)] = r + 1;
    return r;
  }

  #growRaws(): void {
    const n = this.#rawHash.length * 2;
    this.#rawHash = grown(this.#rawHash, n);
    this.#rawBias = grown(this.#rawBias, n);
    this.#rawStart = grown(this.#rawStart, n);
    this.#rawLen = grown(this.#rawLen, n);
    this.#rawExact = grown(this.#rawExact, n);
    this.#rawEntry = grown(this.#rawEntry, n);
  }

  /**
   * Writes the PC ids of the `n` frames at `w[from]` at `#slab[start]`; false if some are not known yet
   * (then their ids are -1).
   */
  #pcIds(w: Uint32Array, from: number, n: number, bias: number, exact: number, start: number): boolean {
    let known = true;
    for (let i = 0; i < n; i++) {
      const pc = this.#pcOf.get(lookupKey(w, from, i, bias, exact)) ?? -1;
      this.#slab[start + i] = pc;
      known &&= pc >= 0;
    }
    return known;
  }

  /** Symbolizes, in one call, the addresses of the `n` frames at `w[from]` not seen yet. */
  #symbolizeMissing(w: Uint32Array, from: number, n: number, bias: number, exact: number): void {
    const missing = new Set<number>();
    for (let i = 0; i < n; i++) {
      const key = lookupKey(w, from, i, bias, exact);
      if (!this.#pcOf.has(key)) missing.add(key);
    }
    const keys = [...missing];
    const frames = this.#symbolize(keys);
    keys.forEach((key, i) => {
      // Compiler-made wrappers (`<autogenerated>:1`) are left out, as runtime.CallersFrames leaves them.
      const ids = (frames[i] ?? []).filter((f) => !f.wrapper).map((f) => this.#frameId(f));
      this.#addPc(key, ids);
    });
  }

  #frameId(f: Frame): number {
    const text = `${f.func} at ${f.file}:${f.line}`;
    let id = this.#frameOf.get(text);
    if (id === undefined) {
      id = this.#frameText.length;
      this.#frameOf.set(text, id);
      this.#frameText.push(text);
      this.#frameHidden.push(PROBE_SITE_FRAMES.has(f.func));
    }
    return id;
  }

  #addPc(key: number, frameIds: number[]): void {
    const pc = this.#pcs++;
    if (pc === this.#pcKey.length) {
      this.#pcKey = grown(this.#pcKey, 2 * pc);
      this.#pcFirst = grown(this.#pcFirst, 2 * pc);
      this.#pcCount = grown(this.#pcCount, 2 * pc);
    }
    const top = this.#pcFrameTop;
    if (top + frameIds.length > this.#pcFrameIds.length) {
      this.#pcFrameIds = grown(this.#pcFrameIds, top + frameIds.length);
    }
    this.#pcFrameIds.set(frameIds, top);
    this.#pcFrameTop += frameIds.length;
    this.#pcKey[pc] = key;
    this.#pcFirst[pc] = top;
    this.#pcCount[pc] = frameIds.length;
    this.#pcOf.set(key, pc);
  }

  /** Writes the frame ids of raw stack `r` into `out` (made room for by #roomForIds); their count. */
  #frameIdsOf(r: number, out: Int32Array): number {
    let n = 0;
    const start = this.#rawStart[r];
    for (let i = 0; i < this.#rawLen[r]; i++) {
      const pc = this.#slab[start + i];
      const first = this.#pcFirst[pc];
      const count = this.#pcCount[pc];
      if (n + count > out.length) throw new RangeError("frame ids overflow");
      for (let j = 0; j < count; j++) out[n++] = this.#pcFrameIds[first + j];
    }
    return n;
  }

  /** Room for the frame ids of raw stack `r` in both scratch arrays. */
  #roomForIds(r: number): void {
    let need = 0;
    for (let i = 0; i < this.#rawLen[r]; i++) need += this.#pcCount[this.#slab[this.#rawStart[r] + i]];
    if (need > this.#ids.length) {
      this.#ids = new Int32Array(2 * need);
      this.#otherIds = new Int32Array(2 * need);
    }
  }

  /** The entry raw stack `r` shows: one with the same frames (hidden ones aside), or a new one. */
  #entryOf(r: number): Stack {
    this.#roomForIds(r);
    const ids = this.#ids;
    const n = this.#frameIdsOf(r, ids);
    let skip = 0;
    while (skip < n - 1 && this.#frameHidden[ids[skip]]) skip++;
    let h = Math.imul(0x811c9dc5 ^ (n - skip), 0x01000193);
    for (let i = skip; i < n; i++) h = Math.imul(h ^ ids[i], 0x01000193);
    const index = this.#textIndex;
    const mask = index.length - 1;
    for (let i = mix(h) & mask;; i = (i + 1) & mask) {
      const e = index[i] - 1;
      if (e < 0) break;
      if (this.#entryHash[e] === h && this.#sameFrames(e, ids, skip, n)) {
        this.#entryFlags[e] |= USED;
        return this.#entries[e];
      }
    }
    const e = this.#entries.length;
    if (e === this.#entryRaw.length) {
      this.#entryRaw = grown(this.#entryRaw, 2 * e);
      this.#entrySkip = grown(this.#entrySkip, 2 * e);
      this.#entryHash = grown(this.#entryHash, 2 * e);
      this.#entryFlags = grown(this.#entryFlags, 2 * e);
    }
    this.#entryFlags[e] = 0;
    this.#entryRaw[e] = r;
    this.#entrySkip[e] = skip;
    this.#entryHash[e] = h;
    const stack = this.#registry.add(this, e);
    this.#entries.push(stack);
    if (2 * this.#entries.length > this.#textIndex.length) {
      this.#textIndex = rehashed(this.#textIndex, this.#entryHash);
    }
    this.#textIndex[probeFree(this.#textIndex, h)] = e + 1;
    return stack;
  }

  /** Whether entry `e` shows frame ids `ids[skip, n)`. */
  #sameFrames(e: number, ids: Int32Array, skip: number, n: number): boolean {
    const r = this.#entryRaw[e];
    this.#roomForIds(r);
    const other = this.#otherIds;
    const m = this.#frameIdsOf(r, other);
    const otherSkip = this.#entrySkip[e];
    if (m - otherSkip !== n - skip) return false;
    for (let i = 0; i < n - skip; i++) if (other[otherSkip + i] !== ids[skip + i]) return false;
    return true;
  }
}

/**
 * The file address frame `i` of the frames at `w[from]` is looked up by: a return address points after
 * its call, maybe at the next line or function, so pc-1 is looked up, as runtime.CallersFrames does;
 * the first `exact` are instruction addresses, looked up as they are.
 */
function lookupKey(w: Uint32Array, from: number, i: number, bias: number, exact: number): number {
  return w[from + 2 * i] + w[from + 2 * i + 1] * 0x1_0000_0000 - bias - (i < exact ? 0 : 1);
}

/** Whether `b[from, from + n)` equals `a[at, at + n)`. */
function sameWords(a: Uint32Array, at: number, b: Uint32Array, from: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[at + i] !== b[from + i]) return false;
  return true;
}

/** Spreads a multiplicative hash's entropy into its low bits (the ones an index uses). */
function mix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  return h ^ (h >>> 13);
}

/** An index size (a power of two) for `n` entries at a load of at most 1/2. */
function indexSize(n: number): number {
  let size = 512;
  while (size < 2 * n) size *= 2;
  return size;
}

/** The first empty position of `index` on the probe path of hash `h`. */
function probeFree(index: Int32Array, h: number): number {
  const mask = index.length - 1;
  let i = mix(h) & mask;
  while (index[i] !== 0) i = (i + 1) & mask;
  return i;
}

/** `index` at twice its size, its entries (i + 1, hashed as `hashes[i]`) placed anew. */
function rehashed(index: Int32Array, hashes: Int32Array): Int32Array<ArrayBuffer> {
  const out = new Int32Array(index.length * 2);
  for (const entry of index) if (entry !== 0) out[probeFree(out, hashes[entry - 1])] = entry;
  return out;
}

function grown<T extends Int32Array | Uint8Array | Float64Array>(from: T, atLeast: number, factor = 2): T {
  let n = Math.ceil(from.length * factor);
  while (n < atLeast) n = Math.ceil(n * factor);
  const to = new (from.constructor as { new (n: number): T })(n);
  to.set(from);
  return to;
}
