"""Figures for the notebooks and the report; each function returns a matplotlib Figure.

The single-panel functions take ``ax=None`` (as d2l's plotting helpers do): given axes, they draw
into them, so that :func:`grid` and the report compose them; without, they make a figure of their
own and lay it out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib

if (
    not matplotlib.get_backend()
    .lower()
    .startswith(("module://", "inline", "nbagg", "widget", "ipympl"))
):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PAPER1_PANELS = (
    ("loss", "Loss (MSLE)"),
    ("rmse", "RMSE (months)"),
    ("mape", "MAPE (%)"),
    ("r2", "R²"),
)


def _axes(ax, figsize: tuple[float, float]):
    """``(figure, axes, own)``: the given axes, or a new figure's (``own``: lay it out here)."""
    if ax is not None:
        return ax.figure, ax, False
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax, True


def _finish(fig, own: bool):
    if own:
        fig.tight_layout()
    return fig


def curve(
    history: pd.DataFrame, key: str = "loss", label: str = "", title: str = "", log=False, ax=None
) -> plt.Figure:
    """One metric per epoch, training and (where recorded) validation."""
    fig, ax, own = _axes(ax, (5.5, 3.6))
    x = history["epoch"] if "epoch" in history else np.arange(1, len(history) + 1)
    marker = "." if len(history) < 30 else None
    ax.plot(x, history[key], label="training", marker=marker)
    if f"val_{key}" in history:
        ax.plot(x, history[f"val_{key}"], label="validation", marker=marker)
    ax.set(xlabel="epoch", ylabel=label or key)
    if log:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _finish(fig, own)


def grid(
    items: dict[str, Any],
    draw: Callable[..., Any],
    cols: int = 3,
    panel: tuple[float, float] = (5.0, 3.6),
    title: str = "",
) -> plt.Figure:
    """One panel per item: ``draw(value, title=name, ax=ax)`` for each ``name: value``."""
    n = len(items)
    cols = max(1, min(cols, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(panel[0] * cols, panel[1] * rows), squeeze=False)
    for ax, (name, value) in zip(axes.flat, items.items(), strict=False):
        draw(value, title=name, ax=ax)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def training_curves(history: pd.DataFrame, panels=PAPER1_PANELS, title: str = "") -> plt.Figure:
    """Training and validation per epoch, one panel per metric (paper 1's Figs. 5-6 layout)."""
    shown = {label: key for key, label in panels if key in history}
    return grid(
        shown,
        lambda key, title, ax: curve(history, key, label=title, ax=ax),
        cols=2,
        panel=(5.5, 3.6),
        title=title,
    )


def pred_vs_true(pred: pd.DataFrame, title: str = "", ax=None) -> plt.Figure:
    """Predicted against true age with the 45-degree line (paper 2's Fig. 4)."""
    fig, ax, own = _axes(ax, (5.2, 5))
    lim = (0, max(240.0, float(pred[["true", "predicted"]].to_numpy().max()) * 1.02))
    ax.scatter(
        pred["true"], pred["predicted"], s=10, alpha=0.7, color="tab:blue", label="prediction"
    )
    ax.plot(lim, lim, color="green", lw=1.5, label="true age (45° line)")
    ax.set(xlim=lim, ylim=lim, xlabel="true bone age (months)", ylabel="predicted (months)")
    mae = float(np.mean(np.abs(pred["predicted"] - pred["true"])))
    summary = f"MAE {mae:.1f} months, n = {len(pred)}"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    return _finish(fig, own)


def bland_altman(pred: pd.DataFrame, title: str = "", ax=None) -> plt.Figure:
    """Difference against mean, with the bias and 95% limits of agreement."""
    fig, ax, own = _axes(ax, (6, 4))
    t, p = pred["true"].to_numpy(float), pred["predicted"].to_numpy(float)
    mean, diff = (t + p) / 2, p - t
    md, sd = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0
    ax.scatter(mean, diff, s=8, alpha=0.6)
    ax.axhline(md, color="red", lw=1, label=f"bias {md:.1f}")
    for s in (-1.96, 1.96):
        ax.axhline(md + s * sd, color="red", ls="--", lw=1)
    ax.set(xlabel="mean of true and predicted (months)", ylabel="predicted - true (months)")
    summary = f"bias {md:.1f}, limits ±{1.96 * sd:.1f}"
    ax.set_title(f"{title}\n{summary}" if title else summary, fontsize=10)
    return _finish(fig, own)


def error_by_group(groups: pd.DataFrame, title: str = "", ax=None) -> plt.Figure:
    """Bars of MAE per age band and sex (from ``tables.error_by_group``); one colour per model."""
    models = list(dict.fromkeys(groups["model"]))
    fig, ax, own = _axes(ax, (10, 4) if len(models) > 1 else (7, 3.5))
    names = list(dict.fromkeys(groups["group"]))
    width = 0.8 / len(models)
    for i, (model, g) in enumerate(groups.groupby("model", sort=False)):
        x = np.array([names.index(n) for n in g["group"]]) + (i - (len(models) - 1) / 2) * width
        mae = pd.to_numeric(g["MAE"], errors="coerce").to_numpy(float)
        ax.bar(x, mae, width, label=model)
        if len(models) == 1:
            for xi, m, n in zip(x, mae, g["n"], strict=True):
                if not np.isnan(m):
                    ax.text(xi, m, f"n={n}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="MAE (months)", title=title or "Test error by age band and sex")
    if len(models) > 1:
        ax.legend(fontsize=7, ncol=2)
    return _finish(fig, own)


def image_grid(
    images, titles=None, cols: int = 8, size: float = 1.8, title: str = ""
) -> plt.Figure:
    """A grid of gray images (2-D arrays), optional titles."""
    n = len(images)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows * 1.1), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(
                np.squeeze(images[i]), cmap="gray", vmin=0, vmax=255 if np.max(images[i]) > 1 else 1
            )
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def histograms(images, titles) -> plt.Figure:
    """Pixel-value histograms of images side by side."""
    fig, axes = plt.subplots(1, len(images), figsize=(4.5 * len(images), 3), squeeze=False)
    for ax, img, title in zip(axes.flat, images, titles, strict=True):
        ax.hist(np.asarray(img).ravel(), bins=64, color="gray")
        ax.set(title=title, xlabel="pixel value", ylabel="pixels")
    fig.tight_layout()
    return fig
