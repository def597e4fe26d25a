"""Several seeds of one series: each seed's headline result beside their mean and SD.

``run_all.sh --seeds 42,43,44`` runs the series once per seed into ``<out>/seed-<seed>/``, every
seed on the first seed's split lists, so on real data every seed is tested on the same images.
:func:`table` gives each notebook's headline across the seeds; :func:`models` every model of the
notebooks (AE-BoNet's random-init twin and baselines too) with its RMSE, R², ratio to the mean
predictor and training time, each as mean and SD across seeds. ``python -m nblib.report.seeds
OUT --seeds 42,43,44`` writes both again from the seeds' folders, without training anything.
Two kinds of noise are kept apart: each seed's bootstrap interval is the test set's sampling noise
for that one training; the SD across seeds is the training's own (initialisation, order of
batches, augmentation draws). On the embedded phantom the seed also draws the phantoms
themselves, so there the SD holds the data's draw as well.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from nblib.core import config, results, runfiles
from nblib.report import leaderboard, summary
from nblib.train import statistics

SUMMARY = "seeds_summary"  # <out>/seeds_summary.csv and .md
MODELS = "seeds_models"  # <out>/seeds_models.csv: every model's row across seeds
SPREAD = ("mae", "rmse", "r2", "ratio", "train_minutes")  # what :func:`models` gives across seeds


def parse_seeds(text: str | None) -> list[int] | None:
    """``"42,43,44"`` -> ``[42, 43, 44]``; None when not given. Duplicates and non-integers are
    refused, naming the value."""
    if text is None:
        return None
    seeds = []
    for part in text.split(","):
        try:
            seed = int(part.strip())
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not an integer seed") from None
        if not 0 <= seed <= config.MAX_SEED:
            raise ValueError(f"{seed} is outside 0-{config.MAX_SEED}")
        if seed in seeds:
            raise ValueError(f"{seed} is given twice")
        seeds.append(seed)
    return seeds


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
        digits = _digits(values.values())
        for s, h in heads.items():
            v = h.get("value")
            cell = statistics.fmt(v, h.get("low"), h.get("high"), digits) if v is not None else "-"
            row[f"seed {s}"] = cell
        spread = statistics.across_seeds(list(values.values()))
        row.update({k: spread[k] for k in ("n", "mean", "sd", "min", "max")})
        rows.append(row)
    return pd.DataFrame(rows)


def _digits(values) -> int:
    """Decimals that show the smallest non-zero value to three significant digits, at least two
    (a reconstruction MSE of 0.00225 must not read "0.00")."""
    small = min((abs(v) for v in values if v), default=1.0)
    return max(2, 2 - math.floor(math.log10(small))) if small < 1 else 2


def _scored(folder: Path) -> list[dict]:
    """Every model in ``folder/metrics.json`` with a test score on the notebook's own test set:
    the notebook's model (03, 04; 07's ensemble) or each of its models (06). Each a
    :func:`leaderboard.row` (MAE, RMSE, R² with their bounds, training minutes) with the ratio to
    the mean predictor; ``[]`` where the
    notebook scores nothing on a test set (01, 02, 05) or wrote no file."""
    path = folder / runfiles.METRICS
    if not path.is_file():
        return []
    doc = results.read_json(path)
    metrics = doc.get("metrics") or {}
    mean = (metrics.get("mean_predictor") or {}).get("mae")
    if isinstance(metrics.get("test"), dict):
        label = leaderboard.LABELS.get(doc.get("model"), doc.get("model") or folder.name)
        found = [(label, metrics)]
    elif isinstance(metrics.get("models"), dict):
        found = [(m.get("label", k), m) for k, m in metrics["models"].items()]
    else:
        return []
    where = f"{folder.name}/{runfiles.METRICS}"
    rows = []
    for label, m in found:
        row = leaderboard.row(
            folder.name, label, m["test"], m.get("intervals"), m.get("train_seconds"), where
        )
        rows.append({**row, "ratio": row["mae"] / mean if mean else None})
    return rows


def models(out_dir: Path | str, seeds: list[int], stems: list[str]) -> pd.DataFrame:
    """One row per model of ``stems``, in the series' order: each seed's test MAE with its
    bootstrap interval, then the mean and SD across seeds of the MAE, RMSE, R², ratio to the mean
    predictor and training minutes (SD NaN with one seed; ``n`` the seeds that scored it)."""
    order: list[tuple[str, str]] = []
    found: dict[tuple[str, str], dict[int, dict]] = {}
    for stem in stems:
        for s in seeds:
            for row in _scored(seed_dir(out_dir, s) / stem):
                key = (stem, row["model"])
                if key not in found:
                    order.append(key)
                    found[key] = {}
                found[key][s] = row
    out = []
    for stem, model in order:
        by_seed = found[(stem, model)]
        row = {"notebook": stem, "model": model}
        for s in seeds:
            r = by_seed.get(s)
            row[f"seed {s}"] = (
                statistics.fmt(r["mae"], r["mae_low"], r["mae_high"], 2) if r else "-"
            )
        row["n"] = len(by_seed)
        for column in SPREAD:
            values = [r[column] for r in by_seed.values() if r.get(column) is not None]
            spread = (
                statistics.across_seeds(values) if values else {"mean": math.nan, "sd": math.nan}
            )
            row[f"{column}_mean"], row[f"{column}_sd"] = spread["mean"], spread["sd"]
        out.append(row)
    return pd.DataFrame(out)


def write(out_dir: Path | str, df: pd.DataFrame, every: pd.DataFrame | None = None) -> Path:
    """``seeds_summary.csv`` and ``seeds_summary.md`` in ``out_dir`` (and, given ``every`` from
    :func:`models`, ``seeds_models.csv`` and its table in the Markdown); returns the Markdown's
    path."""
    out_dir = Path(out_dir)
    results.write_csv(out_dir / f"{SUMMARY}.csv", df)
    text = markdown(df)
    if every is not None and not every.empty:
        results.write_csv(out_dir / f"{MODELS}.csv", every)
        text += "\n" + models_markdown(every)
    return results.write_text(out_dir / f"{SUMMARY}.md", text)


def _mean_sd(row, column: str, digits: int) -> str:
    mean, sd = row[f"{column}_mean"], row[f"{column}_sd"]
    if mean is None or math.isnan(mean):
        return "-"
    text = statistics.fmt(mean, digits=digits)
    return text if math.isnan(sd) else f"{text} ± {statistics.fmt(sd, digits=digits)}"


def models_markdown(every: pd.DataFrame) -> str:
    """The table of :func:`models`: each seed's MAE (interval), then mean ± SD across seeds."""
    seeds = [c for c in every.columns if c.startswith("seed ")]
    head = ["notebook", "model", *[f"{c} MAE" for c in seeds], "MAE", "x mean predictor"]
    head += ["RMSE", "R²", "training (min)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for _, r in every.iterrows():
        cells = [r["notebook"], r["model"], *[r[c] for c in seeds]]
        cells += [_mean_sd(r, "mae", 2), _mean_sd(r, "ratio", 3), _mean_sd(r, "rmse", 2)]
        cells += [_mean_sd(r, "r2", 3), _mean_sd(r, "train_minutes", 1)]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    note = (
        "\nEvery model on its notebook's own test set (paper 1's models and 07 on the official "
        "protocol's, paper 2's on its random split's): each seed's MAE in months with its 95% "
        "bootstrap interval over the test images, then mean ± SD (n - 1) across the seeds.\n"
    )
    return "\n".join(lines) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nblib.report.seeds",
        description="write <out>/seeds_summary.md and .csv again from the seeds' folders",
    )
    parser.add_argument("out", help="the --out folder of run_all.sh --seeds")
    parser.add_argument("--seeds", required=True, help="comma-separated seeds, e.g. 42,43,44")
    args = parser.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError as e:
        print(f"error: --seeds: {e}", file=sys.stderr)
        return 2
    missing = [s for s in seeds if not seed_dir(args.out, s).is_dir()]
    if missing:
        names = ", ".join(str(seed_dir(args.out, s)) for s in missing)
        print(f"error: no folder for seed(s) {names}", file=sys.stderr)
        return 2
    folders = [p for s in seeds for p in seed_dir(args.out, s).iterdir()]
    stems = sorted({p.name for p in folders if (p / runfiles.METRICS).is_file()})
    df, every = table(args.out, seeds, stems), models(args.out, seeds, stems)
    path = write(args.out, df, every)
    print(path.read_text())
    return 0


def markdown(df: pd.DataFrame) -> str:
    if df.empty:
        return "No headline result in any seed's folder.\n"
    shown = df.copy().astype({c: object for c in ("mean", "sd", "min", "max")})
    for i, r in df.iterrows():
        digits = _digits([r["min"], r["max"]])
        for c in ("mean", "sd", "min", "max"):
            shown.at[i, c] = statistics.fmt(r[c], digits=digits)
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


if __name__ == "__main__":
    sys.exit(main())
