/**
 * The inspection endpoint: Deno.serve over the live state, in the tracer's own process.
 *
 * Routes are fixed (nothing is read from disk); wrong paths get 404, other methods than GET and HEAD
 * 405, bad query values 400, and a failing handler 500 — never a crash of gmon.
 *
 * @module
 */
import type { StateView } from "../state/view.ts";
import { goroutinesJson } from "./json.ts";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";
import { goroutineDump, goroutineProfile, goroutineText } from "./pprof.ts";
import { nowDump, nowProfile, nowText, type Which } from "./now.ts";
import { monotonicNs } from "../bpf/native.ts";
import { gzip } from "./proto.ts";

const TEXT = "text/plain; charset=utf-8";

const INDEX = `<!DOCTYPE html>
<html>
<head><title>gmon</title></head>
<body>
<h1>gmon: the goroutines of the traced processes</h1>
<ul>
<li><a href="/debug/pprof/goroutine">/debug/pprof/goroutine</a>: where every goroutine is now, as Go's own
profile of that name (read from the processes' memory): profile.proto for <code>go tool pprof</code>,
<a href="/debug/pprof/goroutine?debug=1">debug=1</a>: counts per stack,
<a href="/debug/pprof/goroutine?debug=2">debug=2</a>: every goroutine as runtime.Stack prints it</li>
<li><a href="/debug/pprof/goroutineleak">/debug/pprof/goroutineleak</a>: the goroutines judged leaked, as Go 1.26's
profile of that name (<a href="/debug/pprof/goroutineleak?debug=1">debug=1</a>,
<a href="/debug/pprof/goroutineleak?debug=2">debug=2</a>: every goroutine, the leaked marked)</li>
<li><a href="/debug/pprof/goroutinecreated">/debug/pprof/goroutinecreated</a>: live goroutines by the whole stack
that created them (<a href="/debug/pprof/goroutinecreated?debug=1">debug=1</a>,
<a href="/debug/pprof/goroutinecreated?debug=2">debug=2</a>: every live goroutine with its age and creation stack)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics by creation site</li>
<li><a href="/goroutines">/goroutines</a>: live goroutines as JSON: where each is now and where it was created</li>
</ul>
</body>
</html>
`;

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": TEXT, ...headers } });
}

/** Answers one request from `view`. Exported for tests; never throws. */
export async function handle(view: StateView, req: Request): Promise<Response> {
  try {
    const url = new URL(req.url);
    const route = ROUTES[url.pathname];
    if (route === undefined) return text(404, "404 page not found\n");
    if (req.method !== "GET" && req.method !== "HEAD") {
      return text(405, "405 method not allowed\n", { allow: "GET, HEAD" });
    }
    return await route(view, url.searchParams);
  } catch (e) {
    return text(500, `internal error: ${(e as Error).message}\n`);
  }
}

type Route = (view: StateView, q: URLSearchParams) => Response | Promise<Response>;

/** A profile in the three forms Go serves: proto (debug=0), counts text (1), dump text (2). */
type Forms = {
  proto: () => Uint8Array | Promise<Uint8Array>;
  text: () => string | Promise<string>;
  dump: () => string | Promise<string>;
};

async function profileRoute(name: string, q: URLSearchParams, forms: Forms): Promise<Response> {
  const debug = q.get("debug") ?? "0";
  if (debug === "1") return text(200, await forms.text());
  if (debug === "2") return text(200, await forms.dump());
  if (debug !== "0") return text(400, `bad debug value ${JSON.stringify(debug)}: want 0, 1 or 2\n`);
  const body = await gzip(await forms.proto());
  return new Response(body as Uint8Array<ArrayBuffer>, {
    headers: {
      "content-type": "application/octet-stream",
      "content-disposition": `attachment; filename="${name}"`,
    },
  });
}

/** Where goroutines are now, or `leaked` ones: readings of the processes, or 503 when unreadable. */
function nowRoute(name: string, which: Which): Route {
  return (view, q) => {
    const snapshots = view.snapshots;
    if (snapshots === undefined) {
      return text(503, "goroutines can't be read from this executable (see gmon's log)\n");
    }
    const readings = () => snapshots.current();
    return profileRoute(name, q, {
      proto: async () => nowProfile(view.path, await readings(), which),
      text: async () => nowText(await readings(), which),
      dump: async () => nowDump(await readings(), view.goMinor ?? 99, monotonicNs(), which === "leaked"),
    });
  };
}

const ROUTES: Record<string, Route> = Object.assign(Object.create(null), {
  "/debug/pprof/": () => new Response(INDEX, { headers: { "content-type": "text/html; charset=utf-8" } }),
  "/debug/pprof/goroutine": nowRoute("goroutine", "all"),
  "/debug/pprof/goroutineleak": nowRoute("goroutineleak", "leaked"),
  "/debug/pprof/goroutinecreated": (view: StateView, q: URLSearchParams) =>
    profileRoute("goroutinecreated", q, {
      proto: () => goroutineProfile(view),
      text: () => goroutineText(view),
      dump: () => goroutineDump(view),
    }),
  "/metrics": (view: StateView) =>
    new Response(metricsText(view), { headers: { "content-type": METRICS_CONTENT_TYPE } }),
  "/goroutines": async (view: StateView) =>
    new Response(await goroutinesJson(view), { headers: { "content-type": "application/json" } }),
});

/** A running endpoint. */
export interface Endpoint {
  /** The address it listens on. */
  readonly addr: Deno.NetAddr;
  /** Stops listening and waits for requests in flight. */
  close(): Promise<void>;
}

/**
 * Starts serving `view` on `hostname:port` (port 0: any free port). Throws a one-line error when the
 * address can't be bound.
 */
export function serve(view: StateView, hostname: string, port: number): Endpoint {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      onError: (e) => text(500, `internal error: ${(e as Error).message}\n`),
    }, (req) => handle(view, req));
  } catch (e) {
    throw new Error(`serve the endpoint on ${hostname}:${port}: ${(e as Error).message}`);
  }
  return {
    addr: server.addr,
    close: () => server.shutdown(),
  };
}
