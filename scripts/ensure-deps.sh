#!/usr/bin/env bash
# Installs what building and testing vecfmt needs on a fresh Debian machine, when missing.
# Idempotent; prints what it does. Usage: scripts/ensure-deps.sh [--python]
set -euo pipefail

want_python=0
[ "${1:-}" = "--python" ] && want_python=1

missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
# The HDF5 converter builds HDF5 from source (hdf5-metno's `static` feature) with cmake.
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
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

# HDF5 2.x wants cmake >= 3.26; Debian 12 ships 3.25. When the system cmake is older, install
# the cmake wheel from PyPI into its own venv and link it into /usr/local/bin (ahead of /usr/bin).
cmake_min=3.26
cmake_version() { cmake --version 2>/dev/null | awk 'NR==1 {print $3}'; }
cmake_new_enough() {
  local v; v=$(cmake_version)
  [ -n "$v" ] && [ "$(printf '%s\n%s\n' "$cmake_min" "$v" | sort -V | head -n1)" = "$cmake_min" ]
}
if ! cmake_new_enough; then
  tools="${XDG_DATA_HOME:-$HOME/.local/share}/vecfmt-tools/cmake"
  echo "ensure-deps: cmake $(cmake_version) is older than $cmake_min; installing the cmake wheel into $tools" >&2
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  python3 -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet "cmake>=$cmake_min,<4"
  $sudo ln -sf "$tools/bin/cmake" /usr/local/bin/cmake
  hash -r
  cmake_new_enough || { echo "ensure-deps: cmake >= $cmake_min is still not first on PATH ($(command -v cmake))" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-deps: cargo is not on PATH. Install the Rust toolchain (rustup, or Debian's cargo >= 1.89) and retry." >&2
  exit 1
fi
