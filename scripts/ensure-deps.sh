#!/usr/bin/env bash
# Installs what building and testing vecfmt needs on a fresh Debian machine, when missing.
# Idempotent; prints what it does. Usage: scripts/ensure-deps.sh [--python]
set -euo pipefail

want_python=0
[ "${1:-}" = "--python" ] && want_python=1

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if [ "$want_python" = 1 ]; then
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    missing+=(python3-venv)
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "ensure-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: cargo is not on PATH. Install the Rust toolchain (rustup, or Debian's cargo >= 1.89) and retry." >&2
  exit 1
fi
