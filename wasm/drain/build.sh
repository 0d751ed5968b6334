#!/bin/sh
# Builds the drain crate to WebAssembly and installs it as build/drain.wasm (Debian's toolchain, as
# ../build.sh explains).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out="$here/../../build"
cd "$here"
PATH=/usr/bin:$PATH RUSTC=/usr/bin/rustc /usr/bin/cargo build --quiet --release --target wasm32-unknown-unknown
mkdir -p "$out"
cp "$here/target/wasm32-unknown-unknown/release/gmon_drain.wasm" "$out/drain.wasm.tmp"
mv "$out/drain.wasm.tmp" "$out/drain.wasm"
