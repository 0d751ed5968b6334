/**
 * gmon: logs every goroutine a Go program creates (with the creator's stack) and every exit, by
 * eBPF uprobes on an executable it never touched.
 *
 * @module
 */
import { parseArgs } from "./src/cli.ts";
import { Logger } from "./src/output/slog.ts";
import { LineWriter } from "./src/output/writer.ts";
import { trace } from "./src/run.ts";

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (parsed.kind === "exit") {
    Deno.stderr.writeSync(new TextEncoder().encode(parsed.stderr));
    return parsed.status;
  }
  const out = new LineWriter(Deno.stdout);
  const log = new Logger(parsed.options.level, (line) => out.write(line));
  try {
    return await trace(parsed.options, out, log);
  } catch (e) {
    out.flush();
    // One line naming the problem; a stack trace is never what a user needs here.
    Deno.stderr.writeSync(new TextEncoder().encode(`gmon: ${(e as Error).message}\n`));
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
