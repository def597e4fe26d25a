#!/usr/bin/env bash
# Runs the test suite (lint, unit tests, real-sample checks, notebook smoke runs).
# Installs what it needs on first use. Extra arguments go to pytest, e.g. ./run_tests.sh -k data
#   ./run_tests.sh --quick    the inner loop: lint and the fast tests, without the slow (training),
#                             notebook (papermill) and real-data tests; CI runs everything
# Tests run in BONEAGE_TEST_WORKERS processes (default 2; 0 runs them in this one), a test file
# per process at a time, so a file's shared fixtures are built once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
quick=()
if [ "${1:-}" = "--quick" ]; then
  shift
  quick=(-m "not slow and not notebook and not real")
fi
echo "[tests] ruff"
ruff check nblib tests notebooks
ruff format --check nblib tests
echo "[tests] pytest"
python -m pytest -q -rs -n "${BONEAGE_TEST_WORKERS:-2}" --dist loadfile "${quick[@]}" "$@"
