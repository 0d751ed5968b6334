/**
 * gmon's BPF object over libbpf: open from bytes, size the ring, load, attach uprobes, read the lost
 * counter, and tear it all down. Every resource taken is released by {@link Probes.close}, which is
 * safe to call at any point, so callers close on every path.
 *
 * @module
 */
import { bpf, c, cstr, errno, strerror } from "./native.ts";
import { Cookie, Flags, PidnsLayout, Reg } from "./record.ts";
import { RingReader } from "./ringbuf.ts";

/** The BPF programs in bpf/gmon.bpf.c. */
export type ProgramName = "gmon_create" | "gmon_exit";

/** One uprobe to attach. */
export interface ProbeSpec {
  /** What it probes, for messages: "runtime.goexit1". */
  what: string;
  program: ProgramName;
  /** File offset of the probed instruction in the executable. */
  offset: number;
  /** Its link-time address. */
  addr: number;
  retprobe: boolean;
  /** The register holding the g at that instruction. */
  reg: keyof typeof Reg;
  /** goid's offset in runtime.g. */
  goidOffset: number;
  /** Echoed in each record's flags: which probe wrote it. */
  index: number;
  /** Most user frames a creation probe captures (1-127); all the kernel gives when absent. */
  maxFrames?: number;
  /** Why the probe sits where it does, for DEBUG. */
  how?: string;
}

/** The attach cookie the BPF program decodes (bpf/gmon.h GMON_COOKIE_*). */
export function cookieOf(spec: ProbeSpec): number {
  return (spec.goidOffset & Cookie.goidMask) + Reg[spec.reg] * 2 ** Cookie.regShift +
    ((spec.maxFrames ?? 0) & 0xff) * 2 ** Cookie.framesShift +
    (spec.index & Flags.probeMask) * 2 ** Cookie.probeShift;
}

/** Where libbpf's own messages go. */
export type LibbpfLog = (line: string) => void;

const EPERM = 1;
const EACCES = 13;
const PRINT_FN = { parameters: ["i32", "pointer", "pointer"], result: "i32" } as const;
/** libbpf keeps the print function for the process: keep its callback alive as long. */
let printCallback: Deno.UnsafeCallback<typeof PRINT_FN> | undefined;

/** Sends libbpf's printf-style log through `log`, formatting its va_list with libc's vsnprintf. */
function routeLibbpfLog(log: LibbpfLog): void {
  const buf = new Uint8Array(1 << 16);
  printCallback?.close();
  const cb = new Deno.UnsafeCallback(
    PRINT_FN,
    (_level, fmt, args) => {
      const n = c().vsnprintf(buf, BigInt(buf.length), fmt, args);
      const text = new TextDecoder().decode(buf.subarray(0, Math.max(0, Math.min(n, buf.length - 1))));
      log(text.trimEnd());
      return 0;
    },
  );
  printCallback = cb;
  bpf().libbpf_set_print(cb.pointer);
}

/** Writes gmon's pid namespace into the object's .rodata.pidns before load (struct gmon_pidns). */
function setPidns(obj: Deno.PointerObject, pidns: { dev: number; ino: number }): void {
  const lib = bpf();
  const map = lib.bpf_object__find_map_by_name(obj, cstr(".rodata.pidns"));
  if (map === null) throw new Error("BPF object has no .rodata.pidns");
  const size = new BigUint64Array(1);
  const p = lib.bpf_map__initial_value(map, new Uint8Array(size.buffer));
  if (p === null || size[0] < BigInt(PidnsLayout.size)) {
    throw new Error(".rodata.pidns has no room for gmon_pidns");
  }
  const v = new DataView(Deno.UnsafePointerView.getArrayBuffer(p, PidnsLayout.size));
  v.setBigUint64(PidnsLayout.dev, BigInt(pidns.dev), true);
  v.setBigUint64(PidnsLayout.ino, BigInt(pidns.ino), true);
}

/** A loaded gmon BPF object and the links attached from it. */
export class Probes {
  #obj: Deno.PointerObject | null;
  #links: Deno.PointerObject[] = [];
  #ring: RingReader | null = null;
  #lostFd: number;
  readonly #lostValue = new BigUint64Array(1);
  /** Kept referenced: libbpf reads the ELF bytes until load. */
  readonly #bytes: Uint8Array;

  private constructor(obj: Deno.PointerObject, bytes: Uint8Array, lostFd: number) {
    this.#obj = obj;
    this.#bytes = bytes;
    this.#lostFd = lostFd;
  }

  /**
   * Opens and loads the object in `bytes` with a ring of `ringBytes` (a power-of-two multiple of the
   * page size). Throws a one-line error; on failure nothing stays loaded.
   */
  static load(
    bytes: Uint8Array<ArrayBuffer>,
    ringBytes: number,
    log: LibbpfLog,
    pidns: { dev: number; ino: number } | null = null,
  ): Probes {
    routeLibbpfLog(log);
    const lib = bpf();
    const obj = lib.bpf_object__open_mem(bytes, BigInt(bytes.length), null);
    if (obj === null || lib.libbpf_get_error(obj) !== 0n) {
      throw new Error(`open BPF object: ${strerror(errno())}`);
    }
    try {
      const events = lib.bpf_object__find_map_by_name(obj, cstr("events"));
      if (events === null) throw new Error("BPF object has no map events");
      if (lib.bpf_map__set_max_entries(events, ringBytes) !== 0) {
        throw new Error(`size ring buffer to ${ringBytes} bytes: ${strerror(errno())}`);
      }
      if (pidns !== null) setPidns(obj, pidns);
      const err = -lib.bpf_object__load(obj);
      if (err !== 0) {
        if (err === EPERM) {
          throw new Error(
            "loading BPF programs needs root (or CAP_BPF and CAP_PERFMON): run gmon with sudo",
          );
        }
        // The verifier refuses with EACCES; its log is at DEBUG.
        const why = err === EACCES
          ? "the kernel's verifier refused it (-level DEBUG shows why)"
          : strerror(err);
        throw new Error(`load BPF object: ${why}`);
      }
      const bss = lib.bpf_object__find_map_by_name(obj, cstr(".bss"));
      if (bss === null) throw new Error("BPF object has no .bss map");
      const probes = new Probes(obj, bytes, lib.bpf_map__fd(bss));
      probes.#ring = new RingReader(lib.bpf_map__fd(events), ringBytes);
      return probes;
    } catch (e) {
      lib.bpf_object__close(obj);
      throw e;
    }
  }

  /**
   * Attaches `spec` to the executable at `path`, for process `pid` only or (-1) for every process;
   * returns the link, for {@link Probes.detach}.
   */
  attach(path: string, pid: number, spec: ProbeSpec): Deno.PointerObject {
    if (this.#obj === null) throw new Error("probes are closed");
    const lib = bpf();
    const prog = lib.bpf_object__find_program_by_name(this.#obj, cstr(spec.program));
    if (prog === null) throw new Error(`BPF object has no program ${spec.program}`);
    // struct bpf_uprobe_opts (libbpf 1.1): sz, ref_ctr_offset, bpf_cookie, retprobe, func_name.
    const opts = new ArrayBuffer(40);
    const dv = new DataView(opts);
    dv.setBigUint64(0, 40n, true);
    dv.setBigUint64(16, BigInt(cookieOf(spec)), true); // > 2^32: BigInt, once per attach
    dv.setUint8(24, spec.retprobe ? 1 : 0);
    const link = lib.bpf_program__attach_uprobe_opts(
      prog,
      pid,
      cstr(path),
      BigInt(spec.offset),
      new Uint8Array(opts),
    );
    if (link === null || lib.libbpf_get_error(link) !== 0n) {
      const err = errno();
      const why = err === EPERM || err === EACCES ? "permission denied: run gmon with sudo" : strerror(err);
      throw new Error(`attach ${spec.retprobe ? "uretprobe" : "uprobe"} ${spec.what}: ${why}`);
    }
    this.#links.push(link);
    return link;
  }

  /** Detaches one link made by {@link Probes.attach}: the kernel takes its breakpoints out. */
  detach(link: Deno.PointerObject): void {
    const i = this.#links.indexOf(link);
    if (i < 0) return;
    this.#links.splice(i, 1);
    bpf().bpf_link__destroy(link);
  }

  /**
   * Attaches the process-life tracepoints (every exec and every process's end on the host), whose
   * records say when a traced process starts over or ends, and which new programs start.
   */
  watchProcesses(): void {
    if (this.#obj === null) throw new Error("probes are closed");
    const lib = bpf();
    for (const name of ["gmon_exec", "gmon_gone"]) {
      const prog = lib.bpf_object__find_program_by_name(this.#obj, cstr(name));
      if (prog === null) throw new Error(`BPF object has no program ${name}`);
      const link = lib.bpf_program__attach(prog);
      if (link === null || lib.libbpf_get_error(link) !== 0n) {
        throw new Error(`attach tracepoint ${name}: ${strerror(errno())}`);
      }
      this.#links.push(link);
    }
  }

  /** The mapped ring buffer. */
  get ring(): RingReader {
    if (this.#ring === null) throw new Error("probes are closed");
    return this.#ring;
  }

  /** Records the kernel side could not put in the ring so far. */
  lost(): number {
    if (this.#obj === null) return 0;
    const key = new Uint32Array(1);
    if (bpf().bpf_map_lookup_elem(this.#lostFd, key, this.#lostValue) !== 0) return 0;
    return Number(this.#lostValue[0]);
  }

  /** Detaches every probe (newest first), unmaps the ring and unloads the object. Idempotent. */
  close(): void {
    const lib = bpf();
    while (this.#links.length > 0) lib.bpf_link__destroy(this.#links.pop()!);
    this.#ring?.close();
    this.#ring = null;
    if (this.#obj !== null) lib.bpf_object__close(this.#obj);
    this.#obj = null;
    this.#lostFd = -1;
    void this.#bytes;
  }
}
