import assert from "node:assert/strict";
import { EventLines } from "../src/log/events.ts";
import { type Attr, Duration, type Encoding, JSON_LINES, TEXT } from "../src/log/slog.ts";
import { type StackEntry, StackTable } from "../src/symbolize/stacks.ts";
import type { Frame } from "../src/target/wasm.ts";
import { written } from "./written.ts";

/** A line as the general (string, attribute list) path writes it: the reference for the fast one. */
function reference(
  enc: Encoding,
  ms: number,
  msg: string,
  goid: number,
  stack: StackEntry,
  more: Attr[],
): string {
  const frames: Attr[] = stack.frames.length === 0
    ? []
    : [["stack", stack.frames.map((f, i) => [String(i), f] as const)]];
  return enc.line(
    enc.time(ms),
    "INFO",
    msg,
    enc.attrs([["goroutine_id", goid], ["stack_id", stack.id], ...frames, ...more]),
  );
}

/** xorshift32: the same "random" events every run. */
function prng(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const symbolize = (pcs: readonly number[]): Frame[][] =>
  pcs.map((pc) => [{ func: `main.f${pc}`, file: `/src/dir ${pc % 3}/é.go`, line: pc }]);

for (const enc of [TEXT, JSON_LINES]) {
  Deno.test(`${enc.format}: event lines equal the general path's, through every template change`, () => {
    const stacks = new StackTable(symbolize, enc);
    const created = [stacks.fixed([1]), stacks.fixed([2, 3]), stacks.fixed([4, 5, 6]), stacks.fixed([])];
    const exits = [stacks.fixed([7]), stacks.fixed([8])];
    const goids = [1, 9, 10, 99, 12345, 999_999, 1_000_000, 2 ** 31, 2 ** 53 - 5];
    const lifetimes = [0, 1, 999, 1000, 1_500, 1_503_000, 1_503_000_000, 3_723_000_000_001, -5, 2 ** 60];
    const pick = prng(0x9e3779b9);
    for (const showPid of [true, false]) {
      const lines = new EventLines(showPid, enc);
      // Milliseconds that stay, step by one, jump, and (in JSON) lose trailing zeros.
      let ms = Date.UTC(2026, 10, 27, 6, 12, 58, 990);
      const got: string[] = [];
      const want: string[] = [];
      for (let i = 0; i < 3000; i++) {
        const step = pick(10);
        ms += step < 6 ? 0 : step < 8 ? 1 : step < 9 ? 10 : 1000 + pick(1000) + 0.5;
        const goid = goids[pick(goids.length)] + (pick(2) === 0 ? 0 : pick(5));
        const pid = [4242, 7, 123456][pick(3)];
        const pidAttr: Attr[] = showPid ? [["pid", pid]] : [];
        if (pick(2) === 0) {
          const stack = created[pick(created.length)];
          const truncated = pick(4) === 0;
          got.push(written((o) => {
            lines.at(ms);
            lines.created(o, goid, stack, pid, truncated);
          }));
          const trunc: Attr[] = truncated ? [["stack_truncated", true]] : [];
          want.push(reference(enc, ms, "runtime.newproc1", goid, stack, [...trunc, ...pidAttr]));
        } else {
          const stack = exits[pick(exits.length)];
          const createdId = pick(3) === 0 ? 0 : created[pick(created.length)].id;
          const lifetime = lifetimes[pick(lifetimes.length)];
          got.push(written((o) => {
            lines.at(ms);
            lines.exited(o, goid, stack, pid, createdId, lifetime);
          }));
          const life: Attr[] = createdId > 0
            ? [["created_stack_id", createdId], ["lifetime", new Duration(lifetime)]]
            : [];
          want.push(reference(enc, ms, "runtime.goexit1", goid, stack, [...life, ...pidAttr]));
        }
        assert.equal(got[i], want[i], `event ${i}`);
      }
    }
  });
}

Deno.test("event lines go into the sink's buffer one after another", () => {
  const stacks = new StackTable(symbolize, TEXT);
  const stack = stacks.fixed([1]);
  const lines = new EventLines(false, TEXT);
  const ms = Date.UTC(2026, 10, 27, 6, 12, 58, 587);
  const text = written((o) => {
    lines.at(ms);
    lines.created(o, 1, stack, 1, false);
    lines.created(o, 2, stack, 1, false);
    lines.at(ms + 1);
    lines.exited(o, 1, stack, 1, stack.id, 1_000);
  });
  assert.equal(
    text,
    'time=2026-11-27T06:12:58.587Z level=INFO msg=runtime.newproc1 goroutine_id=1 stack_id=1 stack.0="main.f1 at /src/dir 1/é.go:1"\n' +
      'time=2026-11-27T06:12:58.587Z level=INFO msg=runtime.newproc1 goroutine_id=2 stack_id=1 stack.0="main.f1 at /src/dir 1/é.go:1"\n' +
      'time=2026-11-27T06:12:58.588Z level=INFO msg=runtime.goexit1 goroutine_id=1 stack_id=1 stack.0="main.f1 at /src/dir 1/é.go:1" created_stack_id=1 lifetime=1µs\n',
  );
});

Deno.test("a forgotten process's creation lines carry its new labels (its pid came back, or it exec'd)", () => {
  const stacks = new StackTable(symbolize, TEXT);
  const stack = stacks.fixed([1]);
  let exe = "/bin/old";
  const lines = new EventLines(true, TEXT, () => [["exe", exe]]);
  const ms = Date.UTC(2026, 10, 27, 6, 12, 58, 587);
  const line = () =>
    written((o) => {
      lines.at(ms);
      lines.created(o, 1, stack, 7, false);
    });
  assert.match(line(), / pid=7 exe=\/bin\/old\n$/);
  exe = "/bin/new";
  lines.forget(7);
  assert.match(line(), / pid=7 exe=\/bin\/new\n$/);
});
