"""Programs people run: the series runner (``run_all.sh``), ``boneage-predict`` and the benchmarks.
The top floor: nothing imports it."""
