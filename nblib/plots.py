"""Figures for the notebooks: each function returns a matplotlib Figure."""

from __future__ import annotations

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


def training_curves(history: pd.DataFrame, panels=PAPER1_PANELS, title: str = "") -> plt.Figure:
    """Training and validation per epoch, one panel per metric (paper 1's Figs. 5-6 layout)."""
    panels = [(k, label) for k, label in panels if k in history]
    cols = 2 if len(panels) > 1 else 1
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.6 * rows), squeeze=False)
    for ax, (key, label) in zip(axes.flat, panels, strict=False):
        ax.plot(
            history["epoch"],
            history[key],
            label="training",
            marker="." if len(history) < 30 else None,
        )
        if f"val_{key}" in history:
            ax.plot(
                history["epoch"],
                history[f"val_{key}"],
                label="validation",
                marker="." if len(history) < 30 else None,
            )
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pred_vs_true(pred: pd.DataFrame, title: str = "") -> plt.Figure:
    """Predicted against true age with the 45-degree line (paper 2's Fig. 4)."""
    fig, ax = plt.subplots(figsize=(5.2, 5))
    lim = (0, max(240.0, float(pred[["true", "predicted"]].to_numpy().max()) * 1.02))
    ax.scatter(
        pred["true"], pred["predicted"], s=12, alpha=0.7, color="tab:blue", label="prediction"
    )
    ax.plot(lim, lim, color="green", lw=1.5, label="true age (45° line)")
    ax.set(
        xlim=lim, ylim=lim, xlabel="true bone age (months)", ylabel="predicted bone age (months)"
    )
    mae = float(np.mean(np.abs(pred["predicted"] - pred["true"])))
    ax.set_title(
        f"{title}\nMAE {mae:.1f} months, n = {len(pred)}" if title else f"MAE {mae:.1f} months"
    )
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bland_altman(pred: pd.DataFrame, title: str = "") -> plt.Figure:
    """Difference against mean, with the bias and 95% limits of agreement."""
    t, p = pred["true"].to_numpy(float), pred["predicted"].to_numpy(float)
    mean, diff = (t + p) / 2, p - t
    md, sd = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(mean, diff, s=10, alpha=0.7)
    ax.axhline(md, color="red", label=f"bias {md:.1f}")
    for s in (-1.96, 1.96):
        ax.axhline(md + s * sd, color="red", ls="--")
    ax.set(
        xlabel="mean of true and predicted (months)",
        ylabel="predicted - true (months)",
        title=title or "Bland-Altman",
    )
    ax.legend()
    fig.tight_layout()
    return fig


def error_by_group(groups: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bar chart of MAE per age band and sex (from ``evaluation.by_group``)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(groups["group"], groups["mae"], color="tab:orange")
    for x, (m, n) in enumerate(zip(groups["mae"], groups["n"], strict=True)):
        if not np.isnan(m):
            ax.text(x, m, f"n={n}", ha="center", va="bottom", fontsize=8)
    ax.set(ylabel="MAE (months)", title=title or "Test error by age band and sex")
    fig.tight_layout()
    return fig


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
