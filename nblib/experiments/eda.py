"""Exploratory summaries for notebook 01: label statistics, image sizes, figures."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.data import rsna, splitting


def label_tables(labels_dir: Path | str) -> pd.DataFrame:
    """Every RSNA label table in ``labels_dir`` (no image checks: label-only folders work)."""
    tables = []
    for csv in rsna.find_tables(Path(labels_dir)):
        t, problems = rsna.read_labels(csv, image_dir=Path(labels_dir))
        if len(problems):
            raise rsna.DataError(str(csv), problems)
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Count, mean, sd, min, median and max age (months) per split and sex."""
    g = df.assign(sex=np.where(df["male"], "male", "female")).groupby(["split", "sex"], sort=False)[
        "boneage"
    ]
    out = (
        g.agg(n="count", mean="mean", sd="std", min="min", median="median", max="max")
        .round(1)
        .reset_index()
    )
    order = {s: i for i, s in enumerate(splitting.SPLITS)}
    return out.sort_values(
        ["split", "sex"], key=lambda c: c.map(order) if c.name == "split" else c
    ).reset_index(drop=True)


def image_sizes(df: pd.DataFrame, n: int = 500, seed: int = 0) -> pd.DataFrame:
    """Width and height of up to ``n`` images, read from their PNG headers (no decoding)."""
    rows = []
    for path in df.sample(n=min(n, len(df)), random_state=seed)["path"]:
        with open(path, "rb") as f:
            head = f.read(24)
        w, h = struct.unpack(">II", head[16:24])
        rows.append({"width": w, "height": h})
    return pd.DataFrame(rows)


def age_figure(df: pd.DataFrame):
    """Age distribution by sex, one panel per split."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    splits = [s for s in splitting.SPLITS if (df["split"] == s).any()]
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.6), squeeze=False)
    d = df.assign(sex=np.where(df["male"], "male", "female"), age_years=df["boneage"] / 12)
    for ax, s in zip(axes.flat, splits, strict=True):
        sns.histplot(
            d[d["split"] == s],
            x="age_years",
            hue="sex",
            bins=np.arange(0, 20),
            multiple="layer",
            hue_order=["female", "male"],
            ax=ax,
            element="step",
        )
        ax.set(title=f"{s} (n = {(d['split'] == s).sum():,})", xlabel="bone age (years)")
    fig.tight_layout()
    return fig


def size_figure(sizes: pd.DataFrame):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(sizes["width"], sizes["height"], s=8, alpha=0.5)
    ax.set(xlabel="width (px)", ylabel="height (px)", title=f"Image sizes ({len(sizes)} images)")
    fig.tight_layout()
    return fig


def montage(df: pd.DataFrame, n: int = 16, size: int = 160, seed: int = 0):
    """``n`` radiographs spread over the age range, ordered by age, with their labels."""
    from nblib.data import pipeline
    from nblib.report import plots

    d = df.sort_values("boneage").reset_index(drop=True)
    idx = np.unique(np.linspace(0, len(d) - 1, min(n, len(d))).round().astype(int))
    pick = d.iloc[idx]
    images = [pipeline.decode(p, size) for p in pick["path"]]
    titles = [
        f"{a / 12:.1f} y {'M' if m else 'F'}"
        for a, m in zip(pick["boneage"], pick["male"], strict=True)
    ]
    return plots.image_grid(images, titles, cols=8, title="Radiographs ordered by bone age")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table of ``df`` (no extra dependency such as tabulate)."""
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(map(str, r)) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"
