/**
 * The endpoint's security, every route alike: foreign Host headers refused (DNS rebinding), a strict
 * Content-Security-Policy on every answer (the page's only lets it load itself), nothing but GET and
 * HEAD, and page files with no inline code and no HTML written from script.
 */
import { assert, assertEquals } from "./assert.ts";
import { hostAllowed, PAGE_CSP, STRICT_CSP } from "../src/endpoint/guard.ts";
import { handle, serve } from "../src/endpoint/http.ts";
import { ASSETS, PAGE } from "../src/endpoint/page.ts";
import { scene } from "./fake_view.ts";

/** Every route, with a query that makes it answer 200. */
const ROUTES = [
  "/",
  ...Object.keys(ASSETS),
  "/api/overview",
  "/api/site?pid=42&site=main.leak",
  "/debug/pprof/",
  "/debug/pprof/goroutinecreated",
  "/debug/pprof/goroutinecreated?debug=1",
  "/debug/pprof/goroutinecreated?debug=2",
  "/metrics",
  "/goroutines",
];

Deno.test("security: which Host headers are this endpoint's", () => {
  const yes: [string | null, string][] = [
    [null, ""],
    ["127.0.0.1:6060", ""],
    ["127.0.0.1", ""],
    ["10.1.2.3:80", ""],
    ["[::1]:6060", ""],
    ["[::1]", ""],
    ["[fe80::1:2]:8080", ""],
    ["localhost:6060", ""],
    ["LOCALHOST:6060", ""],
    ["gmon-box:6060", "gmon-box"],
    ["GMON-box", "gmon-box"],
    ["[::1]:6060", "::1"],
  ];
  const no: [string, string][] = [
    ["evil.example:6060", ""],
    ["evil.example", "127.0.0.1"],
    ["127.0.0.1.evil.example:6060", ""],
    ["localhost.evil.example", ""],
    ["127.1:6060", ""],
    ["0x7f000001", ""],
    ["2130706433:6060", ""],
    ["127.000.000.001", ""],
    ["256.0.0.1", ""],
    ["[::1", ""],
    ["[not:an:ip]", ""],
    ["127.0.0.1:port", ""],
    ["127.0.0.1:6060:1", ""],
    ["", ""],
    ["gmon-box.evil:6060", "gmon-box"],
  ];
  for (const [host, listen] of yes) {
    assertEquals([host, listen, hostAllowed(host, listen)], [host, listen, true]);
  }
  for (const [host, listen] of no) {
    assertEquals([host, listen, hostAllowed(host, listen)], [host, listen, false]);
  }
});

Deno.test("security: a foreign Host gets one line, 421, on every route and on paths that don't exist", async () => {
  const view = scene();
  for (const path of [...ROUTES, "/nothing"]) {
    const r = await handle(
      view,
      new Request(`http://127.0.0.1${path}`, { headers: { host: "rebind.example:6060" } }),
      { listen: "127.0.0.1" },
    );
    const body = await r.text();
    assertEquals([path, r.status], [path, 421]);
    assertEquals(
      body,
      '421 misdirected request: host "rebind.example:6060" is not this endpoint; use its IP address or localhost\n',
    );
    assertEquals(r.headers.get("content-security-policy"), STRICT_CSP);
  }
});

/** Sends one raw HTTP/1.1 request (fetch won't set Host) and returns the status line and body. */
async function raw(port: number, host: string, path: string): Promise<{ status: string; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
    );
    let text = "";
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [head, ...rest] = text.split("\r\n\r\n");
    return { status: head.split("\r\n")[0], body: rest.join("\r\n\r\n") };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

Deno.test("security: the real server refuses a rebound name and answers its own address", async () => {
  const ep = serve(scene(), "127.0.0.1", 0);
  try {
    const port = ep.addr.port;
    const bad = await raw(port, `attacker.example:${port}`, "/api/overview");
    assertEquals(bad.status, "HTTP/1.1 421 Misdirected Request");
    assert(bad.body.startsWith('421 misdirected request: host "attacker.example:'), bad.body);
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const ok = await raw(port, host, "/api/overview");
      assertEquals([host, ok.status], [host, "HTTP/1.1 200 OK"]);
    }
  } finally {
    await ep.close();
  }
});

Deno.test("security: every answer carries a strict CSP; the page's lets it load only itself", async () => {
  const view = scene();
  for (const path of [...ROUTES, "/nothing", "/api/overview?pid=x"]) {
    for (const method of ["GET", "HEAD"]) {
      const r = await handle(view, new Request(`http://127.0.0.1:6060${path}`, { method }));
      await r.body?.cancel();
      assert(
        r.status === 200 || path === "/nothing" || path.endsWith("pid=x"),
        `${method} ${path}: ${r.status}`,
      );
      const csp = r.headers.get("content-security-policy");
      assertEquals([method, path, csp], [method, path, path === "/" ? PAGE_CSP : STRICT_CSP]);
      assertEquals(r.headers.get("x-content-type-options"), "nosniff");
      assertEquals(r.headers.get("x-frame-options"), "DENY");
      assertEquals(r.headers.get("referrer-policy"), "no-referrer");
    }
  }
  // What the page's policy allows: its own origin for scripts, styles, the icon and the API; nothing
  // inline, no other origin, no framing, no HTML written from script.
  const directives = new Map(
    PAGE_CSP.split(";").map((d) => {
      const [name, ...values] = d.trim().split(/\s+/);
      return [name, values.join(" ")];
    }),
  );
  assertEquals(directives.get("default-src"), "'none'");
  for (const d of ["script-src", "style-src", "img-src", "connect-src"]) {
    assertEquals(directives.get(d), "'self'");
  }
  assertEquals(directives.get("frame-ancestors"), "'none'");
  assertEquals(directives.get("require-trusted-types-for"), "'script'");
  assert(!PAGE_CSP.includes("unsafe") && !PAGE_CSP.includes("http") && !PAGE_CSP.includes("*"), PAGE_CSP);
});

Deno.test("security: nothing but GET and HEAD, on any route", async () => {
  const view = scene();
  for (const path of ROUTES) {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const r = await handle(view, new Request(`http://127.0.0.1:6060${path}`, { method }));
      await r.body?.cancel();
      assertEquals([method, path, r.status, r.headers.get("allow")], [method, path, 405, "GET, HEAD"]);
    }
  }
});

Deno.test("security: the page's own files hold no inline code, write no HTML and name no other origin", () => {
  const html = PAGE.body;
  for (const m of html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)) {
    assert(/\bsrc="\/ui\/[a-z]+\.js"/.test(m[0]), `a script not from /ui/: ${m[0]}`);
    assertEquals(m[1].trim(), "", "inline script");
  }
  assert(!/<style\b/i.test(html), "a <style> element");
  assert(!/\sstyle=/i.test(html), "a style attribute");
  assert(!/\son[a-z]+=/i.test(html), "an inline event handler");
  assert(!/javascript:/i.test(html), "a javascript: URL");
  const js = ASSETS["/ui/page.js"].body;
  for (
    const sink of ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]
  ) {
    assert(!js.includes(sink), `page.js uses ${sink}`);
  }
  for (const [path, { body }] of Object.entries({ "/": PAGE, ...ASSETS })) {
    if (path === "/ui/uplot.js" || path === "/ui/icon.svg") continue; // the library; the SVG's xmlns
    assert(!/(https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}/i.test(body), `${path} names another origin`);
  }
  // The library fetches nothing either.
  const lib = ASSETS["/ui/uplot.js"].body;
  for (const call of ["fetch(", "XMLHttpRequest", "importScripts", "WebSocket", "sendBeacon"]) {
    assert(!lib.includes(call), `uplot.js uses ${call}`);
  }
});
