/**
 * Goroutines as Go's own traceback prints them (runtime.Stack(buf, true), /debug/pprof/goroutine?debug=2,
 * a crash dump), in the target's release's shape, so that tools which parse Go dumps read gmon's
 * unchanged:
 *
 * ```
 * goroutine 7 [chan receive, 3 minutes]:
 * main.worker(0xc000012345)
 * 	/src/app/main.go:42 +0x25
 * created by main.run in goroutine 1
 * 	/src/app/main.go:30 +0x4f
 * ```
 *
 * What it shows follows runtime/traceback.go of each release: unexported runtime frames and
 * compiler-made wrappers are hidden (unless nothing else is left), generic shapes print as `[...]`
 * (1.21+), a deep stack is elided in the middle (1.21+: first and last 50 frames) or cut at 100
 * (1.19-1.20), and `created by` names the creator's goroutine (1.21+).
 *
 * @module
 */
import type { Frame, Goroutine } from "./goroutine.ts";

/** Go 1.x minor releases print differently; these are the switches. */
export interface TracebackStyle {
  minor: number;
}

const INNER = 50;
const OUTER = 50;
const OLD_MAX = 100;

/** One goroutine's block, its trailing newline included (Go separates blocks by a blank line). */
export function formatGoroutine(g: Goroutine, style: TracebackStyle, nowNs: number, mark = ""): string {
  let out = header(g, nowNs, mark);
  if (g.frames === null) {
    out += "\tgoroutine running on other thread; stack unavailable\n";
  } else {
    out += frames(g.frames, style, g.args);
  }
  if (g.createdBy !== null && g.goid !== 1 && showFunc(g.createdBy.func, false, false, "")) {
    const name = style.minor >= 21 ? printName(g.createdBy.func) : g.createdBy.func;
    out += `created by ${name}`;
    if (style.minor >= 21 && g.parentGoid !== 0) out += ` in goroutine ${g.parentGoid}`;
    out += `\n\t${g.createdBy.file}:${g.createdBy.line}`;
    if (g.createdBy.offset > 0) out += ` +0x${g.createdBy.offset.toString(16)}`;
    out += "\n";
  }
  return out;
}

/**
 * `goroutine N [state, M minutes, locked to thread]:`; `mark` (e.g. " (leaked)") follows the state,
 * where Go 1.26 puts its leak mark.
 */
export function header(g: Goroutine, nowNs: number, mark = ""): string {
  let out = `goroutine ${g.goid} [${g.state}${mark}`;
  if (g.scan) out += " (scan)";
  const blocked = g.status === 4 || g.status === 3;
  const minutes = blocked && g.waitSinceNs !== 0 ? Math.floor((nowNs - g.waitSinceNs) / 60e9) : 0;
  if (minutes >= 1) out += `, ${minutes} minutes`;
  if (g.lockedToThread) out += ", locked to thread";
  return out + "]:\n";
}

/** The frame lines, with `args` (per physical frame) where each frame's arguments go. */
function frames(all: Frame[], style: TracebackStyle, args: string[] | null): string {
  const t = template(all, style);
  let out = "";
  for (let i = 0; i < t.parts.length; i++) {
    out += t.parts[i];
    const k = t.argsAfter[i];
    if (k >= 0 && args !== null) out += args[k];
  }
  return out;
}

/**
 * A frame list's lines as text, cut where each physical frame's arguments go (`argsAfter[i]`: which
 * physical frame's after `parts[i]`, or -1). Goroutines stopped at the same pcs share one frame list,
 * so this is made once per list, not once per goroutine of a dump.
 */
interface Template {
  minor: number;
  parts: string[];
  argsAfter: number[];
}

const TEMPLATES = new WeakMap<Frame[], Template>();

function template(all: Frame[], style: TracebackStyle): Template {
  let t = TEMPLATES.get(all);
  if (t === undefined || t.minor !== style.minor) {
    t = { minor: style.minor, parts: [""], argsAfter: [-1] };
    const text = (s: string) => t!.parts[t!.parts.length - 1] += s;
    for (const line of shownLines(all, style)) {
      if (typeof line === "string") {
        text(line);
        continue;
      }
      const name = line.func === "runtime.gopanic"
        ? "panic"
        : style.minor >= 21
        ? printName(line.func)
        : line.func;
      text(`${name}(${line.inlined ? "..." : ""}`);
      if (!line.inlined) {
        t.argsAfter[t.argsAfter.length - 1] = line.physical;
        t.parts.push("");
        t.argsAfter.push(-1);
      }
      const offset = !line.inlined && line.offset > 0 ? ` +0x${line.offset.toString(16)}` : "";
      text(`)\n\t${line.file}:${line.line}${offset}\n`);
    }
    TEMPLATES.set(all, t);
  }
  return t;
}

/** The frames shown, runtime frames hidden unless that leaves none, and elided as the release does. */
function shownLines(all: Frame[], style: TracebackStyle): (Frame | string)[] {
  if (style.minor < 21) return oldStyle(all);
  let shown = visible(all);
  if (shown.length === 0) shown = all;
  if (shown.length <= INNER + OUTER) return shown;
  const elided = shown.length - INNER - OUTER;
  return [...shown.slice(0, INNER), `...${elided} frames elided...\n`, ...shown.slice(-OUTER)];
}

/**
 * Go 1.19-1.20: at most 100 physical frames are walked; "...additional frames elided..." follows
 * when exactly 100 lines were printed (Go's own test of its count).
 */
function oldStyle(all: Frame[]): (Frame | string)[] {
  let physical = 0;
  const walked: Frame[] = [];
  for (const f of all) {
    if (physical === OLD_MAX) break;
    walked.push(f);
    if (!f.inlined) physical++;
  }
  let printed = visible(walked);
  if (printed.length === 0) printed = walked;
  return printed.length === OLD_MAX ? [...printed, "...additional frames elided...\n"] : printed;
}

/** The frames Go's showframe keeps (level 1): no wrappers, no unexported runtime functions. */
function visible(all: Frame[]): Frame[] {
  const out: Frame[] = [];
  let callee = "";
  for (const f of all) {
    if (showFunc(f.func, out.length === 0, f.wrapper, callee)) out.push(f);
    callee = f.func;
  }
  return out;
}

/** Callees of a wrapper that keep it in the trace (it called a panic rather than what it wraps). */
const PANICS: ReadonlySet<string> = new Set(["runtime.gopanic", "runtime.sigpanic", "runtime.panicwrap"]);
/** Always shown (Go 1.25+ names them by funcID): finalizers and cleanups running user code. */
const ALWAYS: ReadonlySet<string> = new Set(["runtime.runFinalizers", "runtime.runCleanups"]);

/** runtime.showfuncinfo at traceback level 1. */
export function showFunc(name: string, firstFrame: boolean, wrapper: boolean, callee: string): boolean {
  if (wrapper && !PANICS.has(callee)) return false;
  if (ALWAYS.has(name)) return true;
  if (name === "runtime.gopanic" && !firstFrame) return true;
  return name.includes(".") && (!name.startsWith("runtime.") || isExportedRuntime(name));
}

/** runtime.isExportedRuntime: `runtime.X` or `runtime.(*T).X` with X (and T) exported. */
function isExportedRuntime(name: string): boolean {
  let rest = name.slice("runtime.".length);
  let rcvr = "";
  const dot = rest.lastIndexOf(".");
  if (dot >= 0) {
    rcvr = rest.slice(0, dot);
    rest = rest.slice(dot + 1);
    if (rcvr.length >= 3 && rcvr.startsWith("(*") && rcvr.endsWith(")")) rcvr = rcvr.slice(2, -1);
  }
  const up = (s: string) => s.length > 0 && s[0] >= "A" && s[0] <= "Z";
  return up(rest) && (rcvr === "" || up(rcvr));
}

/**
 * runtime.funcNamePiecesForPrint: a generic function's shape arguments become `[...]`, for a method of
 * a generic type both lists (`main.(*List[...]).Push[...]`); a name it can't parse stays whole.
 */
export function printName(name: string): string {
  if (name === "runtime.gopanic") return "panic";
  const i = name.indexOf("[");
  if (i < 0) return name;
  const j = name.lastIndexOf("]");
  if (j <= i) return name;
  const interior = name.slice(i + 1, j);
  if (!interior.includes("[")) return name.slice(0, i) + "[...]" + name.slice(j + 1);
  let depth = 1;
  let rbr = -1;
  let lbr = -1;
  for (let k = 0; k < interior.length; k++) {
    const c = interior[k];
    if (c === "[") {
      depth++;
      if (depth !== 1) continue;
      lbr = k;
      break;
    }
    if (c === "]") {
      depth--;
      if (depth < 0) break;
      if (depth !== 0) continue;
      rbr = k;
    }
  }
  if (depth === 1) {
    if (rbr >= 0 && lbr > rbr) {
      return name.slice(0, i) + "[...]" + interior.slice(rbr + 1, lbr) + "[...]" + name.slice(j + 1);
    }
    if (rbr === -1 && lbr === -1) return name.slice(0, i) + "[...]" + name.slice(j + 1);
  }
  return name;
}
