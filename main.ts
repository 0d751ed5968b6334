/**
 * gmon: logs every goroutine a Go program creates (with the creator's stack) and every exit, by
 * eBPF uprobes on an executable it never touched.
 *
 * @module
 */
import { parseArgs } from "./src/cli.ts";
import { encoding, Logger } from "./src/log/slog.ts";
import { blockingOut, LineWriter } from "./src/log/writer.ts";
import { openOutput, type Sink } from "./src/log/output.ts";
import { dump } from "./src/dump.ts";
import { trace } from "./src/run.ts";
import { versionLine } from "./src/version.ts";

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.kind === "exit") {
    Deno.stderr.writeSync(new TextEncoder().encode(parsed.stderr));
    return parsed.status;
  }
  if (parsed.kind === "version") {
    const out = new LineWriter(blockingOut(Deno.stdout));
    out.write(versionLine() + "\n");
    out.flush();
    return 0;
  }
  const opts = parsed.options;
  let sink: Sink | null = null;
  try {
    // In launch mode stdout belongs to the program: gmon's lines go to stderr unless -o says where.
    sink = openOutput(opts.output, opts.args.length > 0);
    const out = new LineWriter(sink);
    const log = new Logger(opts.level, (line) => out.write(line), encoding(opts.format));
    try {
      const gone = () => sink!.gone();
      return opts.dump !== null ? await dump(opts, out) : await trace(opts, out, log, gone);
    } finally {
      endOutput(out, opts.output);
    }
  } catch (e) {
    // One line naming the problem; a stack trace is never what a user needs here.
    Deno.stderr.writeSync(new TextEncoder().encode(`gmon: ${oneLine((e as Error).message)}\n`));
    return 1;
  } finally {
    sink?.close();
  }
}

/** How long the last lines may wait for a slow reader when gmon ends. */
const FINISH_MS = 2000;

/**
 * Writes the last lines (waiting a little for a slow reader); lines that could not be written are
 * said on stderr, where the output is elsewhere: a full disk must not end in silence.
 */
function endOutput(out: LineWriter, output: string | null): void {
  out.finish(FINISH_MS);
  if (out.droppedTotal === 0) return;
  const what = out.failure !== null ? out.failure : `${output ?? "the output"}: its reader was too slow`;
  Deno.stderr.writeSync(
    new TextEncoder().encode(`gmon: ${out.droppedTotal} lines not written: ${oneLine(what)}\n`),
  );
}

/**
 * An error message as one clean line: control characters (a newline in a path) escaped as Go's %q would,
 * and Rust's " (os error N)" suffixes (Deno's) dropped: the words before say it.
 */
export function oneLine(msg: string): string {
  // deno-lint-ignore no-control-regex -- control characters are what this escapes
  return msg.replace(/ \(os error \d+\)/g, "").replace(/[\x00-\x1f\x7f]/g, (ch) => {
    const named: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };
    return named[ch] ?? `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
  });
}

if (import.meta.main) {
  // A failure outside main's own try (a timer's callback, a stray promise): still one line, status 1;
  // the kernel detaches the probes with the process's file descriptors.
  const die = (e: unknown) => {
    Deno.stderr.writeSync(
      new TextEncoder().encode(`gmon: internal error: ${oneLine(String((e as Error)?.message ?? e))}\n`),
    );
    Deno.exit(1);
  };
  globalThis.addEventListener("error", (ev) => {
    ev.preventDefault();
    die(ev.error);
  });
  globalThis.addEventListener("unhandledrejection", (ev) => {
    ev.preventDefault();
    die(ev.reason);
  });
  Deno.exit(await main(Deno.args));
}
