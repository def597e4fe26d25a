"""How test accuracy grows with the number of training images: notebook 07's best recipe (its
last rung) trained again on nested random subsets of the training set, each scored on the test
set with its bootstrap interval.

The subsets are nested (one seeded permutation of the training table, its first ``n`` rows), so
each holds the smaller ones; validation and test stay whole, and the full training set is the
rung itself, not trained again. Every point trains the same recipe for the same epochs, from the
same initial draws: smaller sets take fewer steps, as a reader who has fewer images would. Each
point is resumable (``checkpoints/scale-<n>``), and each is compared with the point before it by a
paired bootstrap on the same test images (``vs_previous``, ``verdict``). ``scaling_sizes`` (empty in every profile's
series run) names the sizes; the README gives the command.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.core import results, runfiles
from nblib.experiments import beyond
from nblib.train import statistics

CSV = f"{runfiles.DATA_SCALING}.csv"
FIGURE = f"{runfiles.DATA_SCALING}.png"


def sizes_of(requested, n_train: int) -> list[int]:
    """The subset sizes to train (below ``n_train``, sorted, each once); raises for a size
    larger than the training set, which cannot be drawn."""
    too_big = [n for n in requested if n > n_train]
    if too_big:
        raise ValueError(
            f"scaling_sizes: {too_big} larger than the {n_train:,} training images of this split"
        )
    return sorted({int(n) for n in requested if n < n_train})


def subset_index(n_train: int, n: int, seed: int) -> np.ndarray:
    """The rows of the first ``n`` of one seeded permutation: nested across ``n``."""
    return np.sort(np.random.default_rng(seed).permutation(n_train)[:n])


def _subset(images, parts, sex, idx):
    parts = {**parts, "train": parts["train"].iloc[idx].reset_index(drop=True)}
    images = {name: {**split, "train": split["train"][idx]} for name, split in images.items()}
    sex = {**sex, "train": None if sex.get("train") is None else sex["train"][idx]}
    return images, parts, sex


def _row(n: int, rung: beyond.Rung, parts, before: np.ndarray | None) -> dict:
    """One point: the rung's test metrics with the four flips, as 07 scores its rungs
    (:func:`beyond.rung_metrics`), and the paired bootstrap of its MAE against the point before
    (``before``: that point's test predictions; None for the first)."""
    true = parts["test"]["boneage"].to_numpy(float)
    m = beyond.rung_metrics(rung, true, float(parts["train"]["boneage"].mean()))
    mae = (m["intervals_tta"] or {}).get("mae") or {}
    vs = None if before is None else beyond.paired_mae(true, rung.test.mean(0), before)
    return {
        "train_images": n,
        "test_mae": m["test_tta"]["mae"],
        "test_mae_low": mae.get("low"),
        "test_mae_high": mae.get("high"),
        "train_minutes": rung.seconds / 60,
        "vs_previous": statistics.fmt(vs["difference"], vs["low"], vs["high"], 2) if vs else None,
        "verdict": vs["verdict"] if vs else None,
    }


def curve(cfg, step, images, parts, sex, strategy, full: beyond.Rung) -> pd.DataFrame | None:
    """Train ``step`` (``(key, label, recipe)``, the ladder's last) on each size of
    ``cfg.scaling_sizes``; the table of points, the full set's (``full``) last. None when no
    size is asked for. Written to ``data_scaling.csv`` as it grows."""
    if not cfg.scaling_sizes:
        return None
    n_train = len(parts["train"])
    rows, before = [], None
    for i, n in enumerate(sizes_of(cfg.scaling_sizes, n_train)):
        key, label, recipe = step
        print(f"[progress] 07 data scaling {i + 1}: {n:,} training images", flush=True)
        sub = _subset(images, parts, sex, subset_index(n_train, n, cfg.seed))
        rung = beyond.train_rung(cfg, f"scale-{n}", f"{label} ({n} images)", recipe, *sub, strategy)
        rows.append(_row(n, rung, sub[1], before))
        before = rung.test.mean(0)
        results.write_csv(cfg.run_dir / CSV, pd.DataFrame(rows))
    rows.append(_row(n_train, full, parts, before))
    table = pd.DataFrame(rows)
    results.write_csv(cfg.run_dir / CSV, table)
    return table


def figure(table: pd.DataFrame, title: str = "Test MAE against training images"):
    """Test MAE with its 95% interval against the training-set size (log scale); saved."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x, y = table["train_images"], table["test_mae"]
    err = np.vstack([y - table["test_mae_low"], table["test_mae_high"] - y])
    ax.errorbar(x, y, yerr=err, marker="o", capsize=4)
    ax.set_xscale("log")
    ax.set_xticks(list(x), [f"{n:,}" for n in x])
    ax.set_xlabel("training images (log scale)")
    ax.set_ylabel("test MAE (months), 95% interval")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_figure(cfg, table: pd.DataFrame):
    """:func:`figure`, saved as ``data_scaling.png`` in the notebook's folder."""
    fig = figure(table)
    results.save_figure(fig, cfg.run_dir / FIGURE)
    return fig
