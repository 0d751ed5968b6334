/**
 * profile.proto for goroutine profiles, as Go's runtime/pprof writes them: sample type and period
 * "goroutine count", one sample per stack (and labels), each physical frame one Location at its
 * address with its inlined calls as Lines, innermost first; functions and strings interned.
 *
 * @module
 */
import { splitFrame } from "../state/view.ts";
import { ProtoWriter } from "./proto.ts";

/** A physical frame: its address and its frames (`func at file:line`), inlined calls first. */
export interface Location {
  addr: number;
  frames: readonly string[];
}

/** One sample: how many goroutines share `locations` (innermost first), and its labels. */
export interface Sample {
  value: number;
  labels: readonly (readonly [string, string])[];
  locations: readonly Location[];
}

/** Distinct locations, numbered from 1. */
class LocationIds {
  readonly ids = new Map<string, number>();
  readonly locations: Location[] = [];

  id(loc: Location): number {
    const key = loc.addr + "\n" + loc.frames.join("\n");
    let id = this.ids.get(key);
    if (id === undefined) {
      this.locations.push(loc);
      id = this.locations.length;
      this.ids.set(key, id);
    }
    return id;
  }
}

/** `samples` of the executable at `path` as profile.proto bytes (not compressed). */
export function encodeProfile(path: string, samples: readonly Sample[], nowEpochMs = Date.now()): Uint8Array {
  const strings = new Map<string, number>([["", 0]]);
  const str = (s: string): number => {
    let i = strings.get(s);
    if (i === undefined) {
      i = strings.size;
      strings.set(s, i);
    }
    return i;
  };
  const w = new ProtoWriter();
  const valueType = (field: number) => {
    w.begin(field);
    w.uint(1, str("goroutine"));
    w.uint(2, str("count"));
    w.end();
  };
  valueType(1); // sample_type
  const locs = new LocationIds();
  for (const s of samples) {
    w.begin(2); // sample
    w.packed(1, s.locations.map((l) => locs.id(l)));
    w.packed(2, [s.value]);
    for (const [k, v] of s.labels) {
      w.begin(3); // label
      w.uint(1, str(k));
      w.uint(2, str(v));
      w.end();
    }
    w.end();
  }
  w.begin(3); // mapping: the executable, already symbolized
  w.uint(1, 1);
  w.uint(5, str(path));
  for (const f of [7, 8, 9]) w.bool(f, true); // has_functions, has_filenames, has_line_numbers
  w.end();
  const funcs = new Map<string, number>();
  const funcList: { name: string; file: string }[] = [];
  locs.locations.forEach((loc, i) => {
    w.begin(4); // location
    w.uint(1, i + 1);
    w.uint(2, 1);
    w.uint(3, loc.addr);
    for (const frame of loc.frames) {
      const { func, file, line } = splitFrame(frame);
      const key = func + "\n" + file;
      let fid = funcs.get(key);
      if (fid === undefined) {
        funcList.push({ name: func, file });
        fid = funcList.length;
        funcs.set(key, fid);
      }
      w.begin(4); // line
      w.uint(1, fid);
      w.uint(2, line);
      w.end();
    }
    w.end();
  });
  funcList.forEach((f, i) => {
    w.begin(5); // function
    w.uint(1, i + 1);
    w.uint(2, str(f.name));
    w.uint(3, str(f.name));
    w.uint(4, str(f.file));
    w.end();
  });
  // Interned last: every string is known by now.
  const table = [...strings.keys()];
  w.uint(9, BigInt(Math.round(nowEpochMs)) * 1_000_000n); // time_nanos
  valueType(11); // period_type
  w.uint(12, 1); // period
  for (const s of table) w.string(6, s);
  return w.finish();
}
