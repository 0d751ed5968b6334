#!/bin/sh
[ "$(wc -c <"$0")" = @TOTAL@ ] || { printf 'gmon: %s is damaged: %s bytes, not @TOTAL@ (cut short in copying?): copy it again\n' "$0" "$(wc -c <"$0")" >&2; exit 1; }
# gmon as one file: this POSIX sh stub, then a gzipped tar of Deno, gmon's program and its assets.
#
# The size check above runs before the shell reads any further, so a file cut short anywhere past it
# stops there, and nothing below runs from a partial file. A changed byte in the payload fails its
# checksum: SHA-256 before it is unpacked, CRC-32 (POSIX cksum, fast) on every later run.
#
# The payload unpacks once per content hash into a directory only root (the user running gmon) can
# change: $XDG_CACHE_HOME/gmon or ~/.cache/gmon, else $TMPDIR/gmon-UID or /tmp/gmon-UID when HOME is
# unset, read-only or someone else's (sudo, containers). Later runs reuse it. Then the stub execs Deno:
# no process stays in between, so signals, exit statuses and stdio are gmon's own.

offset=@OFFSET@
payload_size=@PAYLOAD_SIZE@
sha256=@SHA256@
crc=@CRC@

fail() {
  printf 'gmon: %s\n' "$*" >&2
  exit 1
}

# Sets $at to the canonical path of directory $1 (absolute) and $mode to its "owner:mode", walking from /
# one entry at a time; fails unless only root and we can change what the walk went through. Every
# directory on the way must be ours or root's and writable by nobody else, sticky ones like /tmp aside
# (there others may add entries, but not replace ours); a symlink is followed only when root or we own
# it. Checked after the walk, in one stat: if all passed, nobody else could have changed the way.
resolve() {
  todo=${1#/}
  at=
  hops=0
  set -- /
  while [ -n "$todo" ]; do
    part=${todo%%/*}
    todo=${todo#"$part"}
    todo=${todo#/}
    case $part in
    '' | .) continue ;;
    ..)
      at=${at%/*}
      continue
      ;;
    esac
    if [ -L "$at/$part" ]; then
      hops=$((hops + 1))
      if [ "$hops" -gt 40 ]; then
        why="$why $want: too many symlinks;"
        return 1
      fi
      set -- "$@" "$at/$part"
      link=$(readlink -- "$at/$part")
      case $link in /*) at= ;; esac
      todo=${link#/}/$todo
      continue
    fi
    at=$at/$part
    set -- "$@" "$at"
  done
  at=${at:-/}
  modes=$(stat -c '%u:%a' -- "$@" 2>/dev/null) || {
    why="$why $want: cannot stat its way;"
    return 1
  }
  for mode in $modes; do
    owner=${mode%:*}
    if [ "$owner" != 0 ] && [ "$owner" != "$uid" ]; then
      why="$why $want: $1 belongs to uid $owner;"
      return 1
    fi
    if ! [ -L "$1" ] && [ $((0${mode#*:} & 022)) != 0 ] && [ $((0${mode#*:} & 01000)) = 0 ]; then
      why="$why $want: others can write in $1;"
      return 1
    fi
    last=$1
    shift
  done
  [ "$last" = "$at" ] || mode=
}

# Makes $1 (absolute) a directory that only we can change and write in, creating what is missing, and
# prints its canonical path. Fails, saying why in $why, when a directory on the way is not trusted,
# when something there is not a directory of ours (a planted symlink), or when we can't write in it (a
# read-only HOME). Nothing is created before the directories above it passed.
private_dir() {
  want=$1
  case $want in /*) ;; *)
    why="$why $want: not an absolute path;"
    return 1
    ;;
  esac
  # The deepest directory that exists: what is below it must be made by us.
  have=$want
  rest=
  while ! [ -d "$have" ]; do
    rest=/${have##*/}$rest
    have=${have%/*}
    [ -n "$have" ] || have=/
  done
  resolve "$have" || return 1
  dir=$at
  m=directory:$mode
  # The missing part, one directory at a time; mkdir never follows a symlink someone put there first.
  while [ -n "$rest" ]; do
    rest=${rest#/}
    part=${rest%%/*}
    rest=${rest#"$part"}
    case $part in . | .. | '')
      why="$why $want: not a plain path;"
      return 1
      ;;
    esac
    dir=${dir%/}/$part
    mkdir -m 700 -- "$dir" 2>/dev/null
    m=$(stat -c '%F:%u:%a' -- "$dir" 2>/dev/null)
    case $m in "directory:$uid:"*) ;; *)
      why="$why $want: $dir is not a directory of ours;"
      return 1
      ;;
    esac
  done
  # Ours alone: a directory of ours nobody else could write in, closed to everyone else.
  case $m in
  "directory:$uid:700") ;;
  "directory:$uid:"*)
    if [ $((0${m##*:} & 022)) != 0 ] || ! chmod 700 -- "$dir" 2>/dev/null; then
      why="$why $want: others could write in it;"
      return 1
    fi
    ;;
  *)
    why="$why $want: not a directory of uid $uid;"
    return 1
    ;;
  esac
  if ! [ -w "$dir" ]; then
    why="$why $want: read-only;"
    return 1
  fi
  printf '%s\n' "$dir"
}

# The directory to unpack into, the first that passes private_dir.
cache_dir() {
  why=
  cache=${XDG_CACHE_HOME:-${HOME:+$HOME/.cache}}
  if [ -n "$cache" ] && private_dir "${cache%/}/gmon"; then return 0; fi
  tmp=${TMPDIR:-/tmp}
  private_dir "${tmp%/}/gmon-$uid" && return 0
  fail "no private directory to unpack into:${why%;} (set HOME to a directory only uid $uid can change)"
}

# Payload -> $base/$sha256: copied into a private directory first, so the bytes checked are the bytes
# unpacked; renamed into place only when complete, so a run never sees half a directory.
unpack() {
  tmp=$(mktemp -d -- "$base/.unpack.XXXXXX") || fail "cannot write in $base"
  trap 'rm -rf -- "$tmp"' EXIT
  for sig in INT TERM HUP; do
    trap 'rm -rf -- "$tmp"; trap - '"$sig"'; kill -'"$sig"' $$' "$sig"
  done
  tail -c +$((offset + 1)) -- "$0" >"$tmp/payload" 2>"$tmp/err" ||
    fail "cannot unpack into $base: $(head -n 1 "$tmp/err")"
  sum=$(sha256sum <"$tmp/payload")
  sum=${sum%% *}
  [ "$sum" = "$sha256" ] || fail "$0 is corrupted: its payload fails its SHA-256 check: copy it again"
  mkdir -- "$tmp/root"
  tar -xzf "$tmp/payload" -C "$tmp/root" --no-same-owner --no-same-permissions 2>"$tmp/err" ||
    fail "cannot unpack into $base: $(head -n 1 "$tmp/err")"
  rm -f -- "$tmp/payload"
  # Another run may have unpacked the same content meanwhile: theirs is as good as ours.
  mv -T -- "$tmp/root" "$dir" 2>/dev/null || [ -d "$dir" ] || fail "cannot unpack into $base"
  rm -rf -- "$tmp"
  trap - EXIT INT TERM HUP
  # Versions this one replaces, once unused for a day (each run touches its own), and dead unpacks.
  find "$base" -mindepth 1 -maxdepth 1 -mtime +0 ! -name "$sha256" \( -name '.unpack.*' -o \
    -regextype posix-extended -regex '.*/[0-9a-f]{64}' \) -exec rm -rf -- {} + 2>/dev/null
}

main() {
  # The stub's tools come from the system's directories; gmon gets the caller's PATH back.
  caller_path=${PATH-}
  path_set=${PATH+1}
  PATH=/usr/bin:/bin
  uid=$(id -u) || fail "cannot tell who runs it (id -u failed)"
  base=$(cache_dir) || exit 1
  dir=$base/$sha256
  if [ -d "$dir" ]; then
    # dd moves the shared read position past the stub; cksum reads the payload from there (no pipe).
    got=$({ dd bs="$offset" skip=1 count=0 2>/dev/null && cksum; } <"$0")
    [ "$got" = "$crc $payload_size" ] ||
      fail "$0 is corrupted: its payload fails its CRC-32 check: copy it again"
    touch -c -- "$dir"
  else
    mask=$(umask)
    umask 077
    unpack
    umask "$mask"
  fi
  [ -x "$dir/deno" ] || fail "cannot run programs from $base (mounted noexec?): set HOME to a place that can"
  if [ -n "$path_set" ]; then PATH=$caller_path; else unset PATH; fi
  export DENO_DIR="$dir/deno_dir" DENO_NO_UPDATE_CHECK=1
  exec "$dir/deno" run --quiet --no-prompt --cached-only --config "$dir/deno.json" \
    @PERMISSIONS@ "$dir/main.ts" "$@"
}

main "$@"
exit 1
