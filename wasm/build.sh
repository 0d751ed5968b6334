#!/bin/sh
# Builds the Rust crate to WebAssembly and installs it as build/gmon.wasm.
# Debian's toolchain is used on purpose: it ships the wasm32 std (rustup's here
# does not), and /usr/bin first in PATH keeps rustup's proxies out of the way.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../build"
# cargo reads .cargo/config.toml (the Debian crate source) from the working directory.
cd "$here"
PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown
mkdir -p "$out"
cp "$here/target/wasm32-unknown-unknown/release/gmon_wasm.wasm" "$out/gmon.wasm.tmp"
mv "$out/gmon.wasm.tmp" "$out/gmon.wasm"
