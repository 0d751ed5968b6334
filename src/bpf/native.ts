/**
 * The C libraries gmon drives through Deno's FFI: libbpf (load and attach) and a few libc calls
 * (mmap of the ring, clocks, errno). Opened once, lazily, so that `-h` and usage errors never need them.
 *
 * @module
 */

const LIBBPF_SYMBOLS = {
  libbpf_set_print: { parameters: ["function"], result: "pointer" },
  bpf_object__open_mem: { parameters: ["buffer", "usize", "pointer"], result: "pointer" },
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  bpf_object__find_program_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_object__find_map_by_name: { parameters: ["pointer", "buffer"], result: "pointer" },
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  bpf_map_lookup_elem: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  bpf_program__attach_uprobe_opts: {
    parameters: ["pointer", "i32", "buffer", "usize", "buffer"],
    result: "pointer",
  },
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  bpf_map__initial_value: { parameters: ["pointer", "buffer"], result: "pointer" },
  libbpf_get_error: { parameters: ["pointer"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

const LIBC_SYMBOLS = {
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  vsnprintf: { parameters: ["buffer", "usize", "pointer", "pointer"], result: "i32" },
  sysconf: { parameters: ["i32"], result: "i64" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  kill: { parameters: ["i32", "i32"], result: "i32" },
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  stat: { parameters: ["buffer", "buffer"], result: "i32" },
  fstat: { parameters: ["i32", "buffer"], result: "i32" },
  open64: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  pread: { parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  realpath: { parameters: ["buffer", "pointer"], result: "pointer" },
  free: { parameters: ["pointer"], result: "void" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
  fanotify_init: { parameters: ["u32", "u32"], result: "i32" },
  fanotify_mark: { parameters: ["i32", "u32", "u64", "i32", "buffer"], result: "i32" },
  inotify_init1: { parameters: ["i32"], result: "i32" },
  inotify_add_watch: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  opendir: { parameters: ["buffer"], result: "pointer" },
  readdir: { parameters: ["pointer"], result: "pointer" },
  closedir: { parameters: ["pointer"], result: "i32" },
  geteuid: { parameters: [], result: "u32" },
  malloc_trim: { parameters: ["usize"], result: "i32" },
  // (pid, local iovecs, count, remote iovecs, count, flags): reads another process's memory without
  // stopping it (gmon's snapshot of goroutines).
  process_vm_readv: { parameters: ["i32", "buffer", "usize", "buffer", "usize", "usize"], result: "isize" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libbpf = Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];
type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];

let libbpf: Libbpf | undefined;
let libc: Libc | undefined;

/** The libbpf gmon loads: GMON_LIBBPF names another one. */
function libbpfName(): string {
  return Deno.env.get("GMON_LIBBPF") ?? "libbpf.so.1";
}

/** libbpf.so.1's functions; throws a one-line error naming the library when it can't be opened. */
export function bpf(): Libbpf {
  if (!libbpf) {
    const name = libbpfName();
    try {
      libbpf = Deno.dlopen(name, LIBBPF_SYMBOLS).symbols;
    } catch (e) {
      throw new Error(`cannot load ${name} (install libbpf1): ${(e as Error).message}`);
    }
  }
  return libbpf;
}

/**
 * The version ("1.1") of the libbpf gmon would load, or null when it can't be loaded. Opened on its
 * own, asking for nothing else, so that `-version` answers on any host, also where gmon can't run.
 */
export function libbpfVersion(): string | null {
  try {
    const lib = Deno.dlopen(
      libbpfName(),
      {
        libbpf_major_version: { parameters: [], result: "u32" },
        libbpf_minor_version: { parameters: [], result: "u32" },
      } as const,
    );
    try {
      return `${lib.symbols.libbpf_major_version()}.${lib.symbols.libbpf_minor_version()}`;
    } finally {
      lib.close();
    }
  } catch {
    return null;
  }
}

/** The libc functions gmon needs. */
export function c(): Libc {
  libc ??= Deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  return libc;
}

/**
 * Gives the memory malloc holds free back to the kernel. The buffers of a burst of work (reading the
 * goroutines of fifty processes found at once) are freed by V8's collector in pieces, and glibc keeps
 * what it freed in its arenas (its threshold for trimming grows with the sizes it has seen): without
 * this, a host agent would carry its busiest minute's memory for much longer.
 */
export function releaseFreeMemory(): void {
  c().malloc_trim(0n);
}

/** errno of the calling thread, read right after a failed call. */
export function errno(): number {
  const p = c().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** strerror(err), e.g. "Operation not permitted". */
export function strerror(err: number): string {
  const p = c().strerror(err);
  return p ? Deno.UnsafePointerView.getCString(p) : `errno ${err}`;
}

/** A NUL-terminated C string for a "buffer" parameter. */
export function cstr(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s + "\0");
}

const CLOCK_REALTIME = 0;
const CLOCK_MONOTONIC = 1;

/** Milliseconds to add to a CLOCK_MONOTONIC time in ns/1e6 (bpf_ktime_get_ns) to get Unix epoch ms. */
export function monotonicToEpochMs(): number {
  const ts = new BigInt64Array(2);
  const bytes = new Uint8Array(ts.buffer);
  c().clock_gettime(CLOCK_REALTIME, bytes);
  const real = Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
  c().clock_gettime(CLOCK_MONOTONIC, bytes);
  const mono = Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
  return real - mono;
}

/** CLOCK_MONOTONIC now, ns: the clock of bpf_ktime_get_ns and of the Go runtime's nanotime. */
export function monotonicNs(): number {
  const ts = new BigInt64Array(2);
  c().clock_gettime(CLOCK_MONOTONIC, new Uint8Array(ts.buffer));
  return Number(ts[0]) * 1e9 + Number(ts[1]);
}

const RLIMIT_NOFILE = 7;

/**
 * Raises the soft limit on open files to the hard one: the endpoint's connections and the probes'
 * descriptors are gmon's to have, up to what the system allows it.
 */
export function raiseFileLimit(): void {
  const lim = new BigUint64Array(2);
  const bytes = new Uint8Array(lim.buffer);
  if (c().getrlimit(RLIMIT_NOFILE, bytes) !== 0 || lim[0] >= lim[1]) return;
  lim[0] = lim[1];
  c().setrlimit(RLIMIT_NOFILE, bytes);
}

const SC_PAGESIZE = 30;

/** The system page size: the ring buffer's mmap layout is counted in pages. */
export function pageSize(): number {
  return Number(c().sysconf(SC_PAGESIZE));
}
