#!/usr/bin/env bash
# Runs the whole notebook series headless with papermill; installs what it needs on first use.
#   ./run_all.sh                          cpu profile on the embedded synthetic data -> runs/cpu/
#   ./run_all.sh --profile sample         the real 1,000-image RSNA sample (../shared/data/rsna-sample)
#   ./run_all.sh --profile paper --data /path/to/rsna    the papers' settings, for a GPU
# Options: --profile smoke|cpu|sample|full|paper|paper-lite  --data DIR  --out DIR  --only NN|NN-MM
#          --force  --seeds 42,43,44 (the series once per seed into <out>/seed-<seed>/, then mean and SD)
#          --set NAME=VALUE (repeatable; any parameter, e.g. --set drop_bad=true --set epochs=3)
# An interrupted run resumes: finished notebooks are skipped, a notebook stopped mid-training
# continues from its last checkpoint. The console shows one line per training epoch and a closing
# summary table; framework messages go to <out>/logs/; <out>/index.html links every executed
# notebook (as HTML), the report, the logs and the summary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC1091
source "$ROOT/scripts/bootstrap.sh"
exec python -m nblib.apps.runner "$@"
