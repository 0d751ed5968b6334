// The live page: polls /api/overview about once a second (not while the tab is hidden) and draws the
// live goroutines per creation site with uPlot (a global from /ui/uplot.js) and a table of the sites.
// Everything the traced program named (sites, frames, paths) goes into the DOM as text, never as HTML.
/* global uPlot */
"use strict";

const POLL_MS = 1000;
/** An opened site's detail is fetched again every this many polls (it scans the site's goroutines). */
const DETAIL_EVERY = 5;
const CHART_HEIGHT = 320;
const PALETTE = ["#dc2626", "#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
const OTHER_COLOR = "#9ca3af";
const COLUMNS = 11;

/** Time axis ticks, seconds apart: samples are a second apart, so finer ticks would say nothing. */
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
/** Counts change at samples: drawn as steps, not slopes. */
const STEPS = uPlot.paths.stepped({ align: 1 });

const state = {
  pid: "all",
  sort: "live",
  range: "all",
  /** The latest /api/overview answer. */
  data: null,
  chart: null,
  /** What the chart's series are, to rebuild it only when they change. */
  chartShape: "",
  /** Site rows by `pid site`: { tr, cells, detail }. */
  rows: new Map(),
  order: "",
  /** Opened sites (`pid site`). */
  open: new Set(),
  polls: 0,
  timer: 0,
};

const $ = (id) => document.getElementById(id);

/** An element with text and children; only safe properties (no HTML, no handlers as strings). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "title") el.title = v;
    else if (k === "href") el.href = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

const int = (n) => n.toLocaleString("en-US");
const delta = (n) => (n > 0 ? "+" : "") + int(n);

/** Seconds as Go prints a rounded duration: 850ms, 3.2s, 5m12s, 2h3m. */
function age(s) {
  if (s === null || s === undefined) return "–";
  if (s < 1) return Math.round(s * 1000) + "ms";
  if (s < 60) return (Math.round(s * 10) / 10) + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + Math.floor(s % 60) + "s";
  return Math.floor(m / 60) + "h" + (m % 60) + "m";
}

function readHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  state.pid = p.get("pid") ?? "all";
  state.sort = p.get("sort") ?? "live";
  state.range = p.get("range") ?? "all";
}

function writeHash() {
  const p = new URLSearchParams({ pid: state.pid, sort: state.sort, range: state.range });
  history.replaceState(null, "", "#" + p);
}

async function refresh() {
  clearTimeout(state.timer);
  const q = new URLSearchParams({ pid: state.pid, sort: state.sort, range: state.range });
  try {
    const r = await fetch("/api/overview?" + q, { cache: "no-store" });
    if (!r.ok) throw new Error(r.status + " " + (await r.text()).trim());
    state.data = await r.json();
    render(state.data);
    setStatus("updated " + new Date(state.data.now).toLocaleTimeString("en-GB"), false);
  } catch (e) {
    setStatus("gmon is not answering: " + e.message, true);
  }
  state.polls++;
  if (!document.hidden) state.timer = setTimeout(refresh, POLL_MS);
}

function setStatus(text, error) {
  const el = $("status");
  setText(el, text);
  el.classList.toggle("error", error);
}

function render(d) {
  setText($("path"), d.path);
  document.title = "gmon: " + int(d.totals.live) + " live";
  setText($("total-live"), int(d.totals.live));
  setText($("total-created"), int(d.totals.created));
  setText($("total-exited"), int(d.totals.exited));
  setText($("total-sites"), int(d.totals.sites));
  setText($("total-lost"), int(d.totals.lost));
  const snap = d.snapshot === null
    ? "no snapshot yet"
    : "snapshot taken " + age((d.now - d.snapshot.taken_at) / 1000) + " ago";
  setText($("snapshot-state"), snap);
  setText(
    $("snapshot-note"),
    d.snapshot === null ? "leak verdicts and where goroutines are blocked: no snapshot yet" : snap,
  );
  renderProcesses(d);
  renderButtons();
  renderChart(d);
  renderTable(d);
}

function renderProcesses(d) {
  const nav = $("processes");
  const several = d.processes.length > 1 || d.pid !== null;
  nav.hidden = !several;
  $("sites").classList.toggle("one-process", !several);
  if (!several) return;
  const shape = d.processes.map((p) => p.pid).join(",");
  if (nav.dataset.shape !== shape) {
    nav.dataset.shape = shape;
    nav.replaceChildren(h("span", { text: "process: " }));
    for (const pid of ["all", ...d.processes.map((p) => String(p.pid))]) {
      const b = h("button", { type: "button", "data-pid": pid });
      b.addEventListener("click", () => {
        state.pid = pid;
        writeHash();
        refresh();
      });
      nav.append(b, " ");
    }
  }
  for (const b of nav.querySelectorAll("button")) {
    const p = d.processes.find((p) => String(p.pid) === b.dataset.pid);
    const live = b.dataset.pid === "all" ? d.processes.reduce((n, p) => n + p.live, 0) : p?.live ?? 0;
    setText(b, (b.dataset.pid === "all" ? "all" : "pid " + b.dataset.pid) + " (" + int(live) + " live)");
    b.classList.toggle("on", b.dataset.pid === state.pid);
  }
}

function renderButtons() {
  for (const b of document.querySelectorAll("#ranges button")) {
    b.classList.toggle("on", b.dataset.range === state.range);
  }
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.classList.toggle("sorted", th.dataset.sort === state.sort);
  }
}

function seriesLabel(s, d) {
  return d.processes.length > 1 && d.pid === null ? s.site + " (pid " + s.pid + ")" : s.site;
}

function renderChart(d) {
  const el = $("chart");
  const c = d.chart;
  const shape = JSON.stringify([c.series.map((s) => [s.pid, s.site, s.only_grows]), d.processes.length]);
  const data = [c.t, ...c.series.map((s) => s.values), c.other.values];
  if (state.chart === null || state.chartShape !== shape) {
    state.chart?.destroy();
    state.chartShape = shape;
    state.chart = new uPlot(
      {
        width: el.clientWidth || 800,
        height: CHART_HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
        axes: [
          { stroke: "#4b5563", grid: { stroke: "#f3f4f6" }, ticks: { stroke: "#e5e7eb" }, incrs: TIME_STEPS },
          { stroke: "#4b5563", grid: { stroke: "#f3f4f6" }, ticks: { stroke: "#e5e7eb" }, size: 64 },
        ],
        series: [
          {},
          ...c.series.map((s, i) => ({
            label: seriesLabel(s, d),
            stroke: PALETTE[i % PALETTE.length],
            width: s.only_grows ? 3 : 1.5,
            paths: STEPS,
            points: { show: false },
          })),
          {
            label: "other",
            stroke: OTHER_COLOR,
            width: 1,
            dash: [4, 4],
            paths: STEPS,
            points: { show: false },
          },
        ],
        hooks: { setCursor: [(u) => renderLegend(u.cursor.idx)] },
      },
      data,
      el,
    );
  } else {
    state.chart.setData(data);
  }
  renderLegend(state.chart.cursor.idx);
}

/** The legend: per series its value now (or under the cursor) and its growth over the last minute. */
function renderLegend(idx) {
  const d = state.data;
  if (d === null) return;
  const c = d.chart;
  const at = idx === null || idx === undefined ? c.t.length - 1 : idx;
  const items = [
    ...c.series.map((s, i) => ({
      color: PALETTE[i % PALETTE.length],
      label: seriesLabel(s, d),
      value: s.values[at],
      rate: delta(s.growth_1m) + "/min",
      grows: s.only_grows,
    })),
  ];
  if (c.other.sites > 0 || c.other.values.some((v) => v > 0)) {
    items.push({
      color: OTHER_COLOR,
      label: "other (" + int(c.other.sites) + (c.other.sites === 1 ? " site)" : " sites)"),
      value: c.other.values[at],
    });
  }
  const ul = $("legend");
  while (ul.children.length > items.length) ul.lastChild.remove();
  items.forEach((it, i) => {
    let li = ul.children[i];
    if (li === undefined) {
      li = h(
        "li",
        {},
        h("span", { class: "swatch" }),
        h("span", { class: "label" }),
        h("span", { class: "value" }),
        h("span", { class: "rate" }),
        h("span", { class: "badge" }),
      );
      ul.append(li);
    }
    const [sw, label, value, rate, badge] = li.children;
    sw.style.background = it.color;
    setText(label, it.label);
    label.title = it.label;
    setText(value, it.value === undefined ? "–" : int(it.value));
    setText(rate, it.rate ?? "");
    setText(badge, it.grows ? "▲ only grows" : "");
  });
}

function renderTable(d) {
  const tbody = document.querySelector("#sites tbody");
  const seen = new Set();
  for (const r of d.rows) {
    const key = r.pid + " " + r.site;
    seen.add(key);
    let row = state.rows.get(key);
    if (row === undefined) {
      row = newRow(key, r);
      state.rows.set(key, row);
    }
    fillRow(row, r, d);
  }
  for (const [key, row] of state.rows) {
    if (seen.has(key)) continue;
    row.tr.remove();
    row.detail?.remove();
    state.rows.delete(key);
  }
  const order = d.rows.map((r) => r.pid + " " + r.site).join("\n");
  if (order !== state.order) {
    state.order = order;
    for (const r of d.rows) {
      const row = state.rows.get(r.pid + " " + r.site);
      tbody.append(row.tr);
      if (row.detail) tbody.append(row.detail);
    }
  }
  const foot = document.querySelector("#sites tfoot");
  if (d.rest === null) foot.replaceChildren();
  else {
    const cells = [
      h("td", { text: int(d.rest.sites) + (d.rest.sites === 1 ? " more site" : " more sites") }),
      h("td", { class: "pid" }),
      h("td", { class: "num", text: int(d.rest.live) }),
      h("td", { colspan: "3" }),
      h("td", { class: "num", text: int(d.rest.created) }),
      h("td", { class: "num", text: int(d.rest.exited) }),
      h("td"),
      h("td", { class: "num", text: d.rest.leaked === null ? "–" : int(d.rest.leaked) }),
      h("td"),
    ];
    foot.replaceChildren(h("tr", {}, ...cells));
  }
  if (state.polls % DETAIL_EVERY === 0) { for (const key of state.open) loadDetail(key); }
}

function newRow(key, r) {
  const cells = {
    func: h("div", { class: "func" }),
    where: h("div", { class: "where" }),
    pid: h("td", { class: "pid num" }),
    live: h("td", { class: "num live" }),
    growth: h("td", { class: "num" }),
    since: h("td", { class: "num" }),
    trend: h("td", { class: "trend" }),
    created: h("td", { class: "num" }),
    exited: h("td", { class: "num" }),
    oldest: h("td", { class: "num" }),
    leaked: h("td", { class: "num leaked" }),
    blocked: h("td", { class: "blocked" }),
  };
  const tr = h(
    "tr",
    {
      class: "site-row",
      tabindex: "0",
      "aria-expanded": "false",
      "data-pid": String(r.pid),
      "data-site": r.site,
    },
    h("td", { class: "site" }, cells.func, cells.where),
    cells.pid,
    cells.live,
    cells.growth,
    cells.since,
    cells.trend,
    cells.created,
    cells.exited,
    cells.oldest,
    cells.leaked,
    cells.blocked,
  );
  const row = { tr, cells, detail: null };
  const toggle = () => toggleDetail(key, row);
  tr.addEventListener("click", toggle);
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      toggle();
    }
  });
  if (state.open.has(key)) openDetail(key, row);
  return row;
}

function fillRow(row, r, d) {
  const c = row.cells;
  setText(c.func, r.site);
  setText(c.where, r.frame.includes(" at ") ? r.frame.slice(r.frame.indexOf(" at ") + 4) : "");
  setText(c.pid, String(r.pid));
  setText(c.live, int(r.live));
  setText(c.growth, delta(r.growth_1m));
  setText(c.since, delta(r.growth_since_start));
  setText(
    c.trend,
    r.only_grows
      ? "▲ only grows: " + delta(r.rising_by) + " in " + age(r.rising_seconds)
      : r.rising_by > 0
      ? "up " + delta(r.rising_by) + " in " + age(r.rising_seconds)
      : "",
  );
  c.trend.classList.toggle("badge", r.only_grows);
  row.tr.classList.toggle("grows", r.only_grows);
  setText(c.created, int(r.created));
  setText(c.exited, int(r.exited));
  setText(c.oldest, age(r.oldest_seconds));
  setText(c.leaked, r.leaked === null ? "–" : int(r.leaked));
  c.leaked.title = d.snapshot === null ? "no snapshot yet" : r.leaked === null ? "not in the snapshot" : "";
  const blocked = r.blocked.map((b) => b.wait_reason + " at " + shortFrame(b.frame) + " ×" + int(b.count));
  if (r.blocked_more > 0) blocked.push("+" + int(r.blocked_more) + " elsewhere");
  setText(c.blocked, d.snapshot === null ? "–" : blocked.join("; "));
}

/** `main.wait at /src/app/main.go:12` as `main.wait (main.go:12)`. */
function shortFrame(frame) {
  const at = frame.indexOf(" at ");
  if (at < 0) return frame;
  const where = frame.slice(at + 4);
  return frame.slice(0, at) + " (" + where.slice(where.lastIndexOf("/") + 1) + ")";
}

function toggleDetail(key, row) {
  if (state.open.has(key)) {
    state.open.delete(key);
    row.detail?.remove();
    row.detail = null;
    row.tr.setAttribute("aria-expanded", "false");
  } else {
    state.open.add(key);
    openDetail(key, row);
  }
}

function openDetail(key, row) {
  row.detail = h("tr", { class: "detail" }, h("td", { colspan: String(COLUMNS), text: "loading…" }));
  row.tr.after(row.detail);
  row.tr.setAttribute("aria-expanded", "true");
  loadDetail(key);
}

async function loadDetail(key) {
  const row = state.rows.get(key);
  if (row?.detail === null || row === undefined) return;
  const sep = key.indexOf(" ");
  const q = new URLSearchParams({ pid: key.slice(0, sep), site: key.slice(sep + 1) });
  let body;
  try {
    const r = await fetch("/api/site?" + q, { cache: "no-store" });
    if (r.status === 404) body = [h("p", { text: "this site has no goroutines any more" })];
    else if (!r.ok) throw new Error(r.status + " " + (await r.text()).trim());
    else body = detailBody(await r.json());
  } catch (e) {
    body = [h("p", { text: "could not load the site: " + e.message })];
  }
  if (row.detail !== null) row.detail.firstChild.replaceChildren(...body);
}

function detailBody(s) {
  const out = [];
  out.push(h(
    "p",
    { class: "mono" },
    int(s.live) + " live, " + int(s.created) + " created, " + int(s.exited) + " exited; oldest " +
      age(s.oldest_seconds) +
      (s.mean_lifetime_seconds === null ? "" : "; mean lifetime " + age(s.mean_lifetime_seconds)),
  ));
  out.push(h("h3", { text: "Where its goroutines are blocked now" }));
  if (s.snapshot === null) {
    out.push(
      h("p", {
        class: "mono",
        text: state.data?.snapshot === null ? "no snapshot yet" : "not in the snapshot",
      }),
    );
  } else {
    const rows = s.snapshot.blocked.map((b) =>
      h(
        "tr",
        {},
        h("td", { text: b.wait_reason }),
        h("td", { class: "mono", text: b.frame }),
        h("td", { class: "num", text: int(b.count) }),
      )
    );
    if (s.snapshot.blocked_more > 0) {
      rows.push(
        h(
          "tr",
          {},
          h("td", { text: "elsewhere" }),
          h("td"),
          h("td", { class: "num", text: int(s.snapshot.blocked_more) }),
        ),
      );
    }
    out.push(h(
      "p",
      { class: "mono" },
      int(s.snapshot.leaked) + " of " + int(s.snapshot.goroutines) + " judged leaked (goroutineleak)",
    ));
    out.push(h("table", {}, h("tbody", {}, ...rows)));
  }
  out.push(h("h3", { text: "Creation stacks" + (s.stacks.length > 1 ? " (" + s.stacks.length + ")" : "") }));
  for (const st of s.stacks) {
    out.push(
      h("div", {
        class: "mono",
        text: int(st.live) + " live of " + int(st.created) + " created, stack " + st.stack_id,
      }),
    );
    out.push(h("ol", { class: "frames", start: "1" }, ...st.frames.map((f) => h("li", { text: f }))));
  }
  if (s.stacks_more > 0) out.push(h("p", { class: "mono", text: "and " + s.stacks_more + " more stacks" }));
  if (s.oldest.length > 0) {
    out.push(h("h3", { text: "Oldest goroutines" }));
    out.push(
      h("p", {
        class: "mono",
        text: s.oldest.map((g) => "goroutine " + g.id + " (" + age(g.age_seconds) + ")").join(", "),
      }),
    );
  }
  return out;
}

function start() {
  readHash();
  for (const b of document.querySelectorAll("#ranges button")) {
    b.addEventListener("click", () => {
      state.range = b.dataset.range;
      writeHash();
      refresh();
    });
  }
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => {
      state.sort = th.dataset.sort;
      writeHash();
      refresh();
    });
  }
  addEventListener(
    "resize",
    () => state.chart?.setSize({ width: $("chart").clientWidth, height: CHART_HEIGHT }),
  );
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  addEventListener("hashchange", () => {
    readHash();
    refresh();
  });
  refresh();
}

/** For the console (and the browser test): the chart and the latest answer. */
globalThis.gmonPage = { chart: () => state.chart, data: () => state.data };

start();
