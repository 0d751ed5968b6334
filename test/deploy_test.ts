/**
 * The deployment files (deploy/): the systemd unit as systemd itself checks it, the DaemonSet as
 * Kubernetes reads it (YAML), and both running gmon the way the README says: -all, the endpoint on its
 * port, the capabilities gmon needs and no more, not privileged.
 */
import { parse } from "yaml";
import { assert, assertEquals } from "./assert.ts";
import { parseArgs } from "../src/cli.ts";
import { root } from "./harness.ts";

/** What gmon needs, as capabilities(7) names them (the unit says CAP_X, Kubernetes X). */
const NEEDED = ["BPF", "PERFMON", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN", "SYS_RESOURCE"];

/** The options a command line gives gmon, which must be host-wide with the endpoint on `port`. */
function checkArgs(args: string[]): number {
  const parsed = parseArgs(args);
  assert(parsed.kind === "ok", JSON.stringify(parsed));
  assertEquals([parsed.options.all, parsed.options.pprofAddr], [true, "0.0.0.0"]);
  return parsed.options.pprofPort!;
}

Deno.test("deploy: the systemd unit passes systemd-analyze verify and runs gmon -all with what it needs", () => {
  const unit = Deno.readTextFileSync(`${root}/deploy/gmon.service`);
  const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit)!;
  assertEquals(exec[1], "/usr/local/bin/gmon");
  assertEquals(checkArgs(exec[2].split(" ")), 6064);
  for (const key of ["CapabilityBoundingSet", "AmbientCapabilities"]) {
    const caps = new RegExp(`^${key}=(.*)$`, "m").exec(unit)![1].split(" ");
    assertEquals(caps, NEEDED.map((c) => `CAP_${c}`));
  }
  // verify checks that ExecStart's program exists: point it at this checkout's gmon.
  const dir = Deno.makeTempDirSync();
  Deno.writeTextFileSync(
    `${dir}/gmon.service`,
    unit.replace(exec[0], `ExecStart=${root}/scripts/gmon ${exec[2]}`),
  );
  const r = new Deno.Command("systemd-analyze", { args: ["verify", `${dir}/gmon.service`] }).outputSync();
  const said = new TextDecoder().decode(r.stderr) + new TextDecoder().decode(r.stdout);
  assertEquals([r.code, said], [0, ""]);
  // And it would catch a unit that is wrong.
  Deno.writeTextFileSync(`${dir}/gmon.service`, unit.replace(exec[0], `ExecStart=${dir}/missing ${exec[2]}`));
  const bad = new Deno.Command("systemd-analyze", { args: ["verify", `${dir}/gmon.service`] }).outputSync();
  assertEquals(bad.code, 1);
});

Deno.test("deploy: the DaemonSet runs gmon -all per node with the host's pids, named capabilities, a scrape annotation", () => {
  // deno-lint-ignore no-explicit-any -- a Kubernetes manifest, checked field by field below
  const ds = parse(Deno.readTextFileSync(`${root}/deploy/gmon-daemonset.yaml`)) as any;
  assertEquals([ds.apiVersion, ds.kind], ["apps/v1", "DaemonSet"]);
  const pod = ds.spec.template;
  assertEquals(pod.metadata.labels, ds.spec.selector.matchLabels);
  assertEquals(pod.spec.hostPID, true);
  const [c] = pod.spec.containers;
  const port = checkArgs(c.args);
  assertEquals(c.ports[0].containerPort, port);
  assertEquals(pod.metadata.annotations["prometheus.io/scrape"], "true");
  assertEquals(pod.metadata.annotations["prometheus.io/port"], String(port));
  assertEquals(pod.metadata.annotations["prometheus.io/path"], "/metrics");
  assertEquals(c.securityContext.privileged, false);
  assertEquals(c.securityContext.capabilities, { drop: ["ALL"], add: NEEDED });
});
