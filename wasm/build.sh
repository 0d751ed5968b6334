#!/bin/sh
# Builds a Rust crate to WebAssembly and installs it in build/: with no argument the executable
# inspector (wasm/, as build/gmon.wasm); `drain`, the drain's core (wasm/drain/, as build/drain.wasm).
# Debian's toolchain is used on purpose: it ships the wasm32 std (rustup's here
# does not), and /usr/bin first in PATH keeps rustup's proxies out of the way.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../build"
case "${1:-}" in
"") crate=$here name=gmon_wasm file=gmon.wasm ;;
drain) crate=$here/drain name=gmon_drain file=drain.wasm ;;
*) echo "usage: wasm/build.sh [drain]" >&2; exit 2 ;;
esac
# cargo reads .cargo/config.toml (the crate source, build flags) from the working directory.
cd "$crate"
PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown
mkdir -p "$out"
cp "$crate/target/wasm32-unknown-unknown/release/$name.wasm" "$out/$file.tmp"
mv "$out/$file.tmp" "$out/$file"
