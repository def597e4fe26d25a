#!/usr/bin/env bash
# Creates (once) and activates the project's virtual environment in .venv, installing nblib with
# its dependencies and a Jupyter kernel named "boneage-repro". Sourced by run_all.sh and
# run_tests.sh so that a fresh machine with only python3 and pip needs no other step.
# Re-installs only when pyproject.toml changes. Set BONEAGE_PYTHON to choose the interpreter.
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
stamp="$VENV/.boneage-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[bootstrap] installing nblib and its dependencies (first run takes a few minutes)"
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e "$ROOT[dev]"
  python -m ipykernel install --sys-prefix --name boneage-repro --display-name "Python (boneage-repro)" >/dev/null
  echo "$want" > "$stamp"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
