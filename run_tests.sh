#!/usr/bin/env bash
# Runs the test suite (lint, unit tests, real-sample checks, notebook smoke runs).
# Installs what it needs on first use. Extra arguments go to pytest, e.g. ./run_tests.sh -k data
# Tests run in BONEAGE_TEST_WORKERS processes (default 2; 0 runs them in this one), a test file
# per process at a time, so a file's shared fixtures are built once.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "[tests] ruff"
ruff check nblib tests notebooks
ruff format --check nblib tests
echo "[tests] pytest"
python -m pytest -q -rs -n "${BONEAGE_TEST_WORKERS:-2}" --dist loadfile "$@"
