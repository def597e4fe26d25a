#!/usr/bin/env bash
# Regenerates the lock files requirements/lock-py3.X.txt: the exact versions of the default install
# (pyproject.toml's dependencies plus the "dev" extra, i.e. what `pip install -e ".[dev]"` would
# pull) for Linux x86_64, one file per supported Python (3.10-3.13), resolved with `uv pip compile`.
# scripts/bootstrap.sh (run by ./run_all.sh and ./run_tests.sh) installs from the file of the
# running interpreter's version, so every machine gets the same packages.
#
# When to run it: after changing dependencies (or extras) in pyproject.toml, or on purpose to move
# the whole environment to newer releases; then commit pyproject.toml and requirements/ together.
# Each machine re-installs on its next ./run_all.sh or ./run_tests.sh (the install stamp covers the
# lock file). Needs uv on PATH (`pip install uv`, or set UV=/path/to/uv) and network access to
# PyPI; no Python 3.10-3.13 interpreters are needed (uv resolves for each version by itself).
#   scripts/lock.sh              all four lock files
#   scripts/lock.sh 3.12         only the 3.12 file
#   scripts/lock.sh --upgrade    extra arguments go to `uv pip compile` (--upgrade: newest releases
#                                allowed by pyproject.toml; without it the pins already in a lock
#                                file are kept where they still satisfy pyproject.toml)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV="${UV:-uv}"
PLATFORM="x86_64-manylinux_2_28"
SUPPORTED=(3.10 3.11 3.12 3.13)

if ! command -v "$UV" >/dev/null 2>&1; then
  echo "error: uv not found; install it (pip install uv) or set UV=/path/to/uv" >&2
  exit 1
fi
versions=()
extra=()
for arg in "$@"; do
  case "$arg" in
    3.1[0-3]) versions+=("$arg") ;;
    3.*) echo "error: Python $arg is not supported; use one of ${SUPPORTED[*]}" >&2; exit 1 ;;
    *) extra+=("$arg") ;;
  esac
done
[ ${#versions[@]} -gt 0 ] || versions=("${SUPPORTED[@]}")

mkdir -p "$ROOT/requirements"
cd "$ROOT"
for v in "${versions[@]}"; do
  out="requirements/lock-py$v.txt"
  echo "[lock] $out"
  "$UV" pip compile pyproject.toml --extra dev \
    --python-version "$v" --python-platform "$PLATFORM" \
    --custom-compile-command "scripts/lock.sh" \
    --output-file "$out" --quiet ${extra[@]+"${extra[@]}"}
done
