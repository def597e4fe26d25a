#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment in .venv, installing nblib with
# its dependencies and a Jupyter kernel named "boneage-repro". Sourced by run_all.sh and
# run_tests.sh so that a fresh machine with only python3 and pip needs no other step.
# The dependencies come from the lock file of the interpreter's version,
# requirements/lock-py3.X.txt (exact versions, made by scripts/lock.sh from pyproject.toml with
# the "dev" extra), so two machines get the same packages; nblib itself is then installed
# editable without dependencies. Re-installs only when pyproject.toml or that lock file changes.
# Set BONEAGE_PYTHON to choose the interpreter, BONEAGE_VENV the environment's folder, and
# BONEAGE_UNLOCKED=1 to install the newest versions pyproject.toml allows instead of the lock
# (`pip install -U --upgrade-strategy eager -e ".[dev]"`, for trying newer packages;
# tests/test_environment.py then skips its lock check). Without it, the next run goes back to the lock.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BONEAGE_VENV:-$ROOT/.venv}"
PY="${BONEAGE_PYTHON:-python3}"

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found; install Python 3.10-3.13 or set BONEAGE_PYTHON" >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 13) else 1)'; then
  echo "error: $("$PY" --version) is not supported by TensorFlow; use Python 3.10-3.13 (BONEAGE_PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating virtual environment in $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
pyver="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
lock="$ROOT/requirements/lock-py$pyver.txt"
stamp="$VENV/.boneage-installed"
if [ "${BONEAGE_UNLOCKED:-0}" = 1 ]; then
  want="unlocked $(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
else
  if [ ! -f "$lock" ]; then
    locks="$(cd "$ROOT/requirements" 2>/dev/null && ls lock-py*.txt 2>/dev/null | sed 's/^lock-py//; s/\.txt$//' | paste -sd ' ' - || true)"
    echo "error: no lock file requirements/lock-py$pyver.txt for Python $pyver (the environment in $VENV);" \
      "lock files exist for Python ${locks:-(none)} (supported: 3.10-3.13). Use one of those" \
      "(BONEAGE_PYTHON=..., with a new BONEAGE_VENV or $VENV removed), make one with scripts/lock.sh," \
      "or set BONEAGE_UNLOCKED=1 to install unpinned versions from pyproject.toml" >&2
    exit 1
  fi
  want="locked $(cat "$ROOT/pyproject.toml" "$lock" | sha256sum | cut -d' ' -f1)"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install --quiet --upgrade pip
  if [ "${BONEAGE_UNLOCKED:-0}" = 1 ]; then
    echo "[bootstrap] BONEAGE_UNLOCKED=1: installing nblib and the newest versions pyproject.toml allows (not the lock file)"
    python -m pip install --quiet --upgrade --upgrade-strategy eager -e "$ROOT[dev]"
  else
    echo "[bootstrap] installing nblib and the exact versions of requirements/lock-py$pyver.txt (first run takes a few minutes)"
    if [ "$(uname -sm)" != "Linux x86_64" ]; then
      echo "[bootstrap] note: the lock files are resolved for Linux x86_64; on $(uname -sm), if this fails, set BONEAGE_UNLOCKED=1" >&2
    fi
    python -m pip install --quiet -r "$lock"
    python -m pip install --quiet --no-deps -e "$ROOT"
  fi
  python -m ipykernel install --sys-prefix --name boneage-repro --display-name "Python (boneage-repro)" >/dev/null
  echo "$want" > "$stamp"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
