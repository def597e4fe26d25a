"""Two trained notebook-07 models compared on the same images: the choice between recipes.

A recipe is chosen on validation only; test-200 is read after the choice and never decides it.
:func:`compare` gives both, each a paired bootstrap of the MAE difference on the same images
(:func:`nblib.train.statistics.paired`), so that a candidate recipe (another image size, more
epochs, weight averaging) is adopted only where its interval excludes zero on validation.
``python -m nblib.report.compare RUN_A/07_beyond RUN_B/07_beyond`` prints the table from the
two folders' saved predictions, without loading a model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.train import calibration, statistics

ROLES = {"validation": "the choice", "test": "read after the choice"}  # what each split may do


COLUMNS = ("predicted", "corrected")  # the model's own answer, or after the bias correction


def split_frame(folder: Path | str, split: str) -> pd.DataFrame:
    """One split's ``true`` and prediction columns of a finished 07 folder, indexed by id."""
    path = Path(folder) / calibration.SAVED[split]
    df = calibration.saved_predictions(folder, split)
    missing = [c for c in ("id", "true") if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: no column {', '.join(missing)}")
    if df["id"].duplicated().any():
        raise ValueError(f"{path}: id {df['id'][df['id'].duplicated()].iloc[0]} appears twice")
    return df.set_index("id")


def _aligned(a: pd.DataFrame, b: pd.DataFrame, where: str) -> pd.DataFrame:
    """``b`` in ``a``'s row order; refused unless both hold the same images with the same ages."""
    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    if len(only_a) or len(only_b):
        raise ValueError(
            f"{where}: the two models were not scored on the same images "
            f"({len(only_a)} only in the first, {len(only_b)} only in the second, e.g. id "
            f"{(list(only_a) + list(only_b))[0]}); compare runs on the same split"
        )
    b = b.loc[a.index]
    differ = ~np.isclose(a["true"].to_numpy(float), b["true"].to_numpy(float))
    if differ.any():
        raise ValueError(
            f"{where}: image {a.index[differ][0]} has true age {a['true'][differ].iloc[0]} in the "
            f"first folder and {b['true'][differ].iloc[0]} in the second"
        )
    return b


def compare(
    first: Path | str, second: Path | str, column: str = "predicted", seed: int = 0
) -> pd.DataFrame:
    """Each split's MAE of both models and ``second - first`` with its 95% paired bootstrap
    interval and verdict (from the second model's side: "better" means the second is better)."""
    if column not in COLUMNS:
        raise ValueError(f"column must be one of {', '.join(COLUMNS)}, got {column!r}")
    rows = []
    for split, role in ROLES.items():
        name = calibration.SAVED[split]
        a, b = split_frame(first, split), split_frame(second, split)
        for folder, df in ((first, a), (second, b)):
            if column not in df.columns:
                raise ValueError(f"{Path(folder) / name}: no column {column!r}")
        b = _aligned(a, b, f"{split} ({name})")
        r = statistics.paired(a["true"], b[column], a[column], seed=seed)
        rows.append(
            {
                "split": split,
                "role": role,
                "images": len(a),
                "mae_first": r["b"],
                "mae_second": r["a"],
                "difference": r["difference"],
                "low": r["low"],
                "high": r["high"],
                "verdict": r["verdict"],
                "n_resamples": r["n_resamples"],
            }
        )
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, first: str, second: str) -> str:
    header = (
        "| split | images | MAE, first | MAE, second | second - first (95% interval) | "
        "verdict for the second |\n|---|---|---|---|---|---|"
    )
    lines = [
        f"| {r.split} ({r.role}) | {r.images} | {r.mae_first:.2f} | {r.mae_second:.2f} | "
        f"{r.difference:+.2f} ({r.low:+.2f} to {r.high:+.2f}) | {r.verdict} |"
        for r in df.itertuples(index=False)
    ]
    note = (
        f"\nfirst: {first}\nsecond: {second}\nMAE in months; the difference is a paired "
        f"bootstrap over the same images ({df['n_resamples'].iloc[0]:,} resamples). "
        "Choose on validation only.\n"
    )
    return "\n".join([header, *lines]) + "\n" + note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nblib.report.compare",
        description="two finished 07 folders compared on validation (the choice) and test "
        "(read after it), paired on the same images",
    )
    parser.add_argument("first", help="a finished 07_beyond folder (the incumbent)")
    parser.add_argument("second", help="another, trained on the same split (the candidate)")
    parser.add_argument(
        "--column", default="predicted", choices=COLUMNS, help="before or after bias correction"
    )
    args = parser.parse_args(argv)
    try:
        df = compare(args.first, args.second, args.column)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown(df, args.first, args.second))
    return 0


if __name__ == "__main__":
    sys.exit(main())
