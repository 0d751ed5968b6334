/**
 * The inspection endpoint: Deno.serve over the live state, in the tracer's own process.
 *
 * Routes are fixed (nothing is read from disk); wrong paths get 404, other methods than GET and HEAD
 * 405, bad query values 400, and a failing handler 500 — never a crash of gmon. Nothing changes state:
 * every route only reads. Before any of that, a request naming a foreign host is refused (421), and
 * every answer carries the security headers of guard.ts.
 *
 * @module
 */
import { SiteHistory } from "../state/history.ts";
import type { StateView } from "../state/view.ts";
import { BadQuery, overview, siteDetail } from "./api.ts";
import { hostAllowed, misdirected, secured } from "./guard.ts";
import { goroutinesJson } from "./json.ts";
import { METRICS_CONTENT_TYPE, metricsText } from "./metrics.ts";
import { goroutineDump, goroutineProfile, goroutineText } from "./pprof.ts";
import { ASSETS, PAGE } from "./page.ts";
import { gzip } from "./proto.ts";

const TEXT = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json";
/** How often the page's history samples the live counts. */
const SAMPLE_MS = 1000;

const INDEX = `<!DOCTYPE html>
<html>
<head><title>gmon</title></head>
<body>
<h1>gmon: live goroutines by creation site</h1>
<ul>
<li><a href="/">/</a>: the live page, goroutines per creation site over time</li>
<li><a href="/debug/pprof/goroutine">/debug/pprof/goroutine</a>: profile.proto for <code>go tool pprof</code>,
one sample per creation stack, valued with its live goroutines (<a href="/debug/pprof/goroutine?debug=1">debug=1</a>:
text; <a href="/debug/pprof/goroutine?debug=2">debug=2</a>: every live goroutine with its age and creation stack)</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics by creation site</li>
<li><a href="/goroutines">/goroutines</a>: live goroutines as JSON</li>
</ul>
</body>
</html>
`;

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, { status, headers: { "content-type": TEXT, ...headers } });
}

/** What a request is answered with besides the view. */
export interface HandleOptions {
  /** The address the endpoint listens on (-pprof-addr): a Host naming it is this endpoint's. */
  listen?: string;
  /** The live counts over time, for the page's chart (without: the chart has only now). */
  history?: SiteHistory;
}

/** Answers one request from `view`. Exported for tests; never throws. */
export async function handle(view: StateView, req: Request, opts: HandleOptions = {}): Promise<Response> {
  const host = req.headers.get("host");
  if (!hostAllowed(host, opts.listen)) return secured(misdirected(host ?? ""));
  let res: Response;
  try {
    res = await route(view, req, opts);
  } catch (e) {
    res = e instanceof BadQuery
      ? text(400, e.message + "\n")
      : text(500, `internal error: ${(e as Error).message}\n`);
  }
  return secured(res, res.status === 200 && new URL(req.url).pathname === "/");
}

function route(view: StateView, req: Request, opts: HandleOptions): Response | Promise<Response> {
  const url = new URL(req.url);
  const asset = url.pathname === "/" ? PAGE : ASSETS[url.pathname];
  const route = ROUTES[url.pathname];
  if (route === undefined && asset === undefined) return text(404, "404 page not found\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    return text(405, "405 method not allowed\n", { allow: "GET, HEAD" });
  }
  if (asset !== undefined) {
    return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache" } });
  }
  return route(view, url.searchParams, opts);
}

type Route = (view: StateView, q: URLSearchParams, opts: HandleOptions) => Response | Promise<Response>;

function json(body: unknown): Response {
  return new Response(JSON.stringify(body), {
    headers: { "content-type": JSON_TYPE, "cache-control": "no-store" },
  });
}

const ROUTES: Record<string, Route> = Object.assign(Object.create(null), {
  "/api/overview": (view: StateView, q: URLSearchParams, opts: HandleOptions) =>
    json(overview(view, opts.history, q)),
  "/api/site": (view: StateView, q: URLSearchParams) => {
    const detail = siteDetail(view, q);
    return detail === null ? text(404, "no such site in that process\n") : json(detail);
  },
  "/debug/pprof/": () => new Response(INDEX, { headers: { "content-type": "text/html; charset=utf-8" } }),
  "/debug/pprof/goroutine": async (view: StateView, q: URLSearchParams) => {
    const debug = q.get("debug") ?? "0";
    if (debug === "1") return text(200, goroutineText(view));
    if (debug === "2") return text(200, goroutineDump(view));
    if (debug !== "0") return text(400, `bad debug value ${JSON.stringify(debug)}: want 0, 1 or 2\n`);
    const body = await gzip(goroutineProfile(view));
    return new Response(body as Uint8Array<ArrayBuffer>, {
      headers: {
        "content-type": "application/octet-stream",
        "content-disposition": 'attachment; filename="goroutine"',
      },
    });
  },
  "/metrics": (view: StateView) =>
    new Response(metricsText(view), { headers: { "content-type": METRICS_CONTENT_TYPE } }),
  "/goroutines": (view: StateView) =>
    new Response(goroutinesJson(view), { headers: { "content-type": JSON_TYPE } }),
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
  const history = new SiteHistory(view);
  const opts: HandleOptions = { listen: hostname, history };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      onListen: () => {},
      onError: (e) => secured(text(500, `internal error: ${(e as Error).message}\n`)),
    }, (req) => handle(view, req, opts));
  } catch (e) {
    throw new Error(`serve the endpoint on ${hostname}:${port}: ${(e as Error).message}`);
  }
  // The endpoint owns the history's clock: sampling costs a pass over the sites, not the goroutines.
  history.sample();
  const timer = setInterval(() => history.sample(), SAMPLE_MS);
  return {
    addr: server.addr,
    close: () => {
      clearInterval(timer);
      return server.shutdown();
    },
  };
}
