/**
 * gmon: logs every goroutine a Go program creates (with the creator's stack) and every exit, by
 * eBPF uprobes on an executable it never touched.
 *
 * @module
 */
import { parseArgs } from "./src/cli.ts";
import { encoding, Logger } from "./src/log/slog.ts";
import { LineWriter } from "./src/log/writer.ts";
import { trace } from "./src/run.ts";
import { versionLine } from "./src/version.ts";

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.kind === "exit") {
    Deno.stderr.writeSync(new TextEncoder().encode(parsed.stderr));
    return parsed.status;
  }
  if (parsed.kind === "version") {
    const out = new LineWriter(Deno.stdout);
    out.write(versionLine() + "\n");
    out.flush();
    return 0;
  }
  const opts = parsed.options;
  let file: Deno.FsFile | null = null;
  try {
    // In launch mode stdout belongs to the program: gmon's lines go to stderr unless -o says where.
    if (opts.output !== null) {
      file = Deno.openSync(opts.output, { write: true, create: true, truncate: true });
    }
    const out = new LineWriter(file ?? (opts.args.length > 0 ? Deno.stderr : Deno.stdout));
    const log = new Logger(opts.level, (line) => out.write(line), encoding(opts.format));
    try {
      return await trace(opts, out, log);
    } finally {
      out.flush();
    }
  } catch (e) {
    // One line naming the problem; a stack trace is never what a user needs here.
    const msg = e instanceof Deno.errors.NotFound || e instanceof Deno.errors.PermissionDenied
      ? (e as Error).message.replace(/ \(os error \d+\)/, "")
      : (e as Error).message;
    Deno.stderr.writeSync(new TextEncoder().encode(`gmon: ${msg}\n`));
    return 1;
  } finally {
    file?.close();
  }
}

if (import.meta.main) {
  // A failure outside main's own try (a timer's callback, a stray promise): still one line, status 1;
  // the kernel detaches the probes with the process's file descriptors.
  const die = (e: unknown) => {
    Deno.stderr.writeSync(new TextEncoder().encode(`gmon: internal error: ${(e as Error)?.message ?? e}\n`));
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
