/**
 * The live page in a real browser: gmon traces the leaking fixture with real eBPF, headless Chromium
 * loads `/`, and what it renders must show the leak: the site's row with its live count, a chart whose
 * line stands at that count, the creation stack when the row is opened; after more leak, a second load
 * shows both grown. Every request the page makes goes to gmon's own address, and no error or policy
 * violation is logged. Screenshots stay in build/test-artifacts/.
 */
import { assert, assertEquals } from "./assert.ts";
import { Browser, haveChromium, type Page, VIEWPORT } from "./cdp.ts";
import { buildFixture, Gmon, root } from "./harness.ts";
import { freePort, Leaker } from "./leaker.ts";
import { countColor, decodePng, nonBackground } from "./png.ts";

const K = 25;
const CHURN = 40;
const ARTIFACTS = `${root}/build/test-artifacts`;

/** What the page shows of site main.leak of process `pid`, once its row and chart say `n`. */
interface Seen {
  live: string;
  where: string;
  totalLive: number;
  snapshot: string;
  leaked: string;
  /** Share of the chart's canvas painted. */
  painted: number;
  /** The series' colour is drawn at the chart's right end at height n; at height n/2. */
  atN: boolean;
  atHalf: boolean;
  rgb: number[];
}

/** Waits until the page shows `n` live at main.leak, in the table and as sampled chart points. */
async function shows(page: Page, pid: number, n: number): Promise<Seen> {
  const row = `document.querySelector('tr.site-row[data-pid="${pid}"][data-site="main.leak"]')`;
  await page.waitFor(
    `the page to show ${n} live at main.leak`,
    `(() => {
      const row = ${row};
      const d = globalThis.gmonPage?.data();
      const s = d?.chart.series.find((s) => s.pid === ${pid} && s.site === "main.leak");
      // The last point is now, the ones before it samples of the history: with two samples at n, the
      // step up to n is a second or more before the chart's right end.
      // A reading of the process that found them has given the row its verdict column.
      return row?.querySelector(".live").textContent === "${n}" && s !== undefined &&
        s.values.length >= 3 && s.values.slice(-3).every((v) => v === ${n}) &&
        row.querySelector(".leaked").textContent === "0" && d.rows.some((r) => r.site === "main.leak" &&
          r.blocked.some((b) => b.count === ${n}));
    })()`,
  );
  return await page.eval<Seen>(`(() => {
    const row = ${row};
    const u = gmonPage.chart();
    const d = gmonPage.data();
    const i = d.chart.series.findIndex((s) => s.pid === ${pid} && s.site === "main.leak");
    const swatch = document.querySelectorAll("#legend .swatch")[i];
    const rgb = getComputedStyle(swatch).backgroundColor.match(/\\d+/g).map(Number);
    const ctx = u.ctx;
    const w = ctx.canvas.width;
    const h = ctx.canvas.height;
    const px = ctx.getImageData(0, 0, w, h).data;
    let painted = 0;
    for (let o = 3; o < px.length; o += 4) if (px[o] > 0) painted++;
    // Is the series' colour drawn just left of (x, y)?
    const near = (x, y) => {
      for (let dx = -8; dx <= -1; dx++) {
        for (let dy = -3; dy <= 3; dy++) {
          const X = Math.round(x) + dx;
          const Y = Math.round(y) + dy;
          if (X < 0 || Y < 0 || X >= w || Y >= h) continue;
          const o = (Y * w + X) * 4;
          if (px[o + 3] > 100 && Math.abs(px[o] - rgb[0]) < 60 && Math.abs(px[o + 1] - rgb[1]) < 60 &&
            Math.abs(px[o + 2] - rgb[2]) < 60) return true;
        }
      }
      return false;
    };
    const x = u.valToPos(d.chart.t.at(-1), "x", true);
    return {
      live: row.querySelector(".live").textContent,
      where: row.querySelector(".where").textContent,
      totalLive: Number(document.getElementById("total-live").textContent.replaceAll(",", "")),
      snapshot: document.getElementById("snapshot-state").textContent,
      leaked: row.querySelector(".leaked").textContent,
      painted: painted / (w * h),
      atN: near(x, u.valToPos(${n}, "y", true)),
      atHalf: near(x, u.valToPos(${n / 2}, "y", true)),
      rgb,
    };
  })()`);
}

/** Takes a screenshot, keeps it under `name`, and checks it shows something, the leak's line too. */
async function screenshot(page: Page, name: string, lineRgb: number[]): Promise<void> {
  const png = await page.screenshot();
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  await Deno.writeFile(`${ARTIFACTS}/${name}`, png);
  const img = await decodePng(png);
  assertEquals([img.width, img.height], [VIEWPORT.width, VIEWPORT.height]);
  assert(nonBackground(img) > 0.05, `${name} looks blank: ${nonBackground(img)}`);
  assert(
    countColor(img, lineRgb) > 100,
    `${name}: the leak's line (rgb ${lineRgb}) is not in the screenshot`,
  );
}

function checkSeen(seen: Seen, n: number): void {
  assertEquals(seen.live, String(n));
  assert(/\/leaker\/main\.go:\d+$/.test(seen.where), seen.where);
  assert(seen.totalLive >= n, String(seen.totalLive));
  assert(/^snapshot taken \d+(\.\d+)?(ms|s) ago$/.test(seen.snapshot), seen.snapshot);
  // Blocked on a channel a global holds: not leaked.
  assertEquals(seen.leaked, "0");
  assert(seen.painted > 0.01, `the chart's canvas is blank (${seen.painted} painted)`);
  assert(seen.atN, `no line at ${n} at the chart's right end`);
  assert(!seen.atHalf, `a line at ${n / 2} at the chart's right end`);
}

Deno.test("e2e page: chromium shows the leak site, its count and chart, grown after more leak", async () => {
  assert(haveChromium(), "Debian's chromium is not installed: run scripts/setup");
  const bin = buildFixture("leaker");
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  // A short -leak-after makes gmon read the process every second, so the page's verdicts follow fast.
  const gmon = new Gmon(["-path", bin, "-pprof-port", String(port), "-leak-after", "6s"]);
  let leaker: Leaker | undefined;
  let browser: Browser | undefined;
  try {
    await gmon.attached();
    leaker = new Leaker(bin, K, CHURN);
    const pid = leaker.child.pid;
    await leaker.expect("ready");
    await leaker.send("leak", "leaked");

    // rebind.test stands for a name an attacker points at 127.0.0.1 (DNS rebinding).
    browser = await Browser.launch(["--host-resolver-rules=MAP rebind.test 127.0.0.1"]);
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on("Network.requestWillBeSent", (p) => requests.push((p.request as { url: string }).url));
    page.on("Runtime.exceptionThrown", (p) => problems.push(JSON.stringify(p.exceptionDetails)));
    page.on("Runtime.consoleAPICalled", (p) => {
      if (p.type === "error" || p.type === "warning") problems.push(JSON.stringify(p.args));
    });
    page.on("Log.entryAdded", (p) => {
      const e = p.entry as { level: string; source: string; text: string; url?: string };
      if (e.level === "error" || e.level === "warning") {
        problems.push(`${e.source}: ${e.text} ${e.url ?? ""}`);
      }
    });
    for (const domain of ["Network", "Runtime", "Log", "Page"]) await page.send(`${domain}.enable`);

    await page.goto(`${base}/`);
    const first = await shows(page, pid, K);
    checkSeen(first, K);
    const links = await page.eval<string[]>(
      `[...document.querySelectorAll("header nav a")].map((a) => a.pathname)`,
    );
    for (const l of ["/debug/pprof/", "/debug/pprof/goroutine", "/metrics", "/goroutines"]) {
      assert(links.includes(l), `no link to ${l}: ${links}`);
    }
    // Opened, the row shows the whole creation stack and where its goroutines are blocked now.
    await page.eval(
      `document.querySelector('tr.site-row[data-pid="${pid}"][data-site="main.leak"]').click()`,
    );
    const detail = await page.waitFor<string>(
      "the opened site",
      `document.querySelector("tr.detail")?.textContent.includes("main.main at") && document.querySelector("tr.detail").textContent`,
    );
    assert(/main\.leak at \S*\/leaker\/main\.go:\d+/.test(detail), detail);
    assert(detail.includes(`${K} live of ${K} created`), detail);
    assert(/chan receive/.test(detail) && /main\.wait at \S*\/leaker\/main\.go:\d+/.test(detail), detail);
    await screenshot(page, "page-first.png", first.rgb);

    // More leak, and a second load: the count and the line have grown.
    await leaker.send("leak", "leaked");
    await page.goto(`${base}/`);
    const grown = await shows(page, pid, 2 * K);
    checkSeen(grown, 2 * K);
    await screenshot(page, "page-grown.png", grown.rgb);

    assert(requests.some((u) => u.startsWith(`${base}/api/overview?`)), requests.join("\n"));
    assert(requests.includes(`${base}/ui/uplot.js`), requests.join("\n"));
    const elsewhere = requests.filter((u) => !u.startsWith(`${base}/`));
    assertEquals(elsewhere, [], "requests that left gmon's address");
    assertEquals(problems, [], "errors, warnings or policy violations in the page");

    // A page reached by another name is refused, whatever it asks.
    const rebound = await browser.newPage();
    await rebound.goto(`http://rebind.test:${port}/`);
    const text = await rebound.eval<string>("document.body.innerText");
    assert(text.startsWith('421 misdirected request: host "rebind.test:'), text);
    await leaker.send("release", "released");
    await browser.close();
    await leaker.quit();
    assertEquals(await gmon.stop(), 0);
  } finally {
    await browser?.close();
    await leaker?.quit();
    await gmon.stop("SIGKILL");
  }
  assertEquals(gmon.stderr, "");
});
