"""Several seeds of one series: each seed's headline result beside their mean and SD.

``run_all.sh --seeds 42,43,44`` runs the series once per seed into ``<out>/seed-<seed>/``, every
seed on the first seed's split lists, so on real data every seed is tested on the same images.
Two kinds of noise are kept apart: each seed's bootstrap interval is the test set's sampling noise
for that one training; the SD across seeds is the training's own (initialisation, order of
batches, augmentation draws). On the embedded phantom the seed also draws the phantoms
themselves, so there the SD holds the data's draw as well.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nblib.core import results
from nblib.report import summary
from nblib.train import statistics

SUMMARY = "seeds_summary"  # <out>/seeds_summary.csv and .md


def seed_dir(out_dir: Path | str, seed: int) -> Path:
    """Where one seed's series is written."""
    return Path(out_dir) / f"seed-{seed}"


def table(out_dir: Path | str, seeds: list[int], stems: list[str]) -> pd.DataFrame:
    """One row per notebook with a headline result: each seed's value (with its interval where
    the run stored one), and the mean, SD, minimum and maximum across the seeds that have it."""
    rows = []
    for stem in stems:
        heads = {s: summary.headline(seed_dir(out_dir, s) / stem) for s in seeds}
        values = {s: h.get("value") for s, h in heads.items() if h.get("value") is not None}
        if not values:
            continue
        metric = next(h["metric"] for h in heads.values() if h.get("value") is not None)
        row = {"notebook": stem, "metric": metric}
        for s, h in heads.items():
            v = h.get("value")
            row[f"seed {s}"] = statistics.fmt(v, h.get("low"), h.get("high"), 2) if v else "-"
        spread = statistics.across_seeds(list(values.values()))
        row.update({k: spread[k] for k in ("n", "mean", "sd", "min", "max")})
        rows.append(row)
    return pd.DataFrame(rows)


def write(out_dir: Path | str, df: pd.DataFrame) -> Path:
    """``seeds_summary.csv`` and ``seeds_summary.md`` in ``out_dir``; returns the Markdown's path."""
    out_dir = Path(out_dir)
    results.write_csv(out_dir / f"{SUMMARY}.csv", df)
    return results.write_text(out_dir / f"{SUMMARY}.md", markdown(df))


def markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "No headline result in any seed's folder.\n"
    shown = df.copy()
    for c in ("mean", "sd", "min", "max"):
        shown[c] = shown[c].map(lambda v: statistics.fmt(v, digits=2))
    header = "| " + " | ".join(shown.columns) + " |"
    rule = "|" + "---|" * len(shown.columns)
    lines = ["| " + " | ".join(str(v) for v in r) + " |" for r in shown.itertuples(index=False)]
    note = (
        "\nEach seed's value with its 95% bootstrap interval over the test images; mean and SD "
        "(n - 1) across seeds, every seed on the first seed's split lists: on real data the "
        "training's own noise on the same test images (on the embedded phantom, each seed also "
        "draws its own phantoms).\n"
    )
    return "\n".join([header, rule, *lines]) + "\n" + note
