"""Uncertainty on test metrics: bootstrap intervals, paired comparisons and verdicts.

A single test MAE says little on its own: the test set is a sample of images, and another sample
would give another number. This module resamples the test images (with replacement) to put a
percentile interval on MAE, RMSE and R^2, compares two models on the *same* resampled images (a
paired bootstrap, which cancels the image-to-image difficulty both models share), and turns
intervals into plain-word verdicts. Pure NumPy, so reports and tests can use it without Keras.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

METRICS = ("mae", "rmse", "r2")
LOWER_IS_BETTER = {"mae": True, "rmse": True, "r2": False, "mse": True}

METHOD = "bootstrap over test images, percentile"


def _check_level(level: float) -> float:
    """Refuse a confidence level outside (0, 1): 95 instead of 0.95 is an easy slip."""
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be between 0 and 1 (exclusive), got {level}")
    return level


def _as_vector(values: Any, name: str) -> np.ndarray:
    """A 1-D float array; a Keras-style column ``[n, 1]`` is flattened, other shapes refused."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def _as_pair(true: Any, pred: Any, pred_name: str = "pred") -> tuple[np.ndarray, np.ndarray]:
    """Validated true/predicted vectors of the same length, at least two items.

    Two items is the least for which R^2 and a resample that differs from the data make sense.
    """
    t = _as_vector(true, "true")
    p = _as_vector(pred, pred_name)
    if len(t) != len(p):
        raise ValueError(f"true and {pred_name} must have the same length ({len(t)} vs {len(p)})")
    if len(t) < 2:
        raise ValueError(f"need at least 2 test items for an interval, got {len(t)}")
    return t, p


def _finite_scalar(value: Any, name: str) -> float:
    """A finite float, or a ValueError naming the argument."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value}")
    return value


def resample_indices(n: int, n_resamples: int = 2000, seed: int = 0) -> np.ndarray:
    """Bootstrap indices, one resample of the ``n`` test items per row.

    Drawn once and shared by every metric (and both models in a paired comparison), so the
    intervals describe the same hypothetical test sets.

    Args:
        n: Number of test items (at least 2).
        n_resamples: Number of resamples (rows), at least 1.
        seed: Seed for ``np.random.default_rng``; the same seed gives the same indices.

    Returns:
        Integer array ``[n_resamples, n]`` with values in ``[0, n)``.
    """
    n, n_resamples = operator.index(n), operator.index(n_resamples)
    if n < 2:
        raise ValueError(f"n must be at least 2 test items, got {n}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def metric_samples(true: Any, pred: Any, idx: np.ndarray) -> dict[str, np.ndarray]:
    """MAE, MSE, RMSE and R^2 of every resample, vectorised over the rows of ``idx``.

    R^2 uses the resampled true values' own total sum of squares, as it would on a test set of
    those images; a resample whose true values are all equal has no variance, so its R^2 is NaN.

    Args:
        true: True ages, length n.
        pred: Predicted ages, length n.
        idx: Integer indices ``[n_resamples, n_draw]`` (a 1-D array counts as one row).

    Returns:
        ``{"mae", "mse", "rmse", "r2"}``, each a float array of length n_resamples.
    """
    t, p = _as_pair(true, pred)
    idx = np.atleast_2d(np.asarray(idx))
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must hold integer indices, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= len(t)):
        raise ValueError(f"idx must lie in [0, {len(t)}), got {idx.min()}..{idx.max()}")
    ts = t[idx]
    err = p[idx] - ts
    sq = err**2
    mse = sq.mean(axis=1)
    ss_tot = ((ts - ts.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    constant = ts.max(axis=1) == ts.min(axis=1)  # exact test; a rounded ss_tot may not be 0
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(constant, np.nan, 1.0 - sq.sum(axis=1) / ss_tot)
    return {"mae": np.abs(err).mean(axis=1), "mse": mse, "rmse": np.sqrt(mse), "r2": r2}


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    """Percentile interval, ignoring NaN resamples (an R^2 with no variance); NaN if all are."""
    tail = (1.0 - level) / 2.0 * 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanpercentile(samples, [tail, 100.0 - tail])
    return float(low), float(high)


def _point(samples: np.ndarray) -> float:
    """The single value of a one-row metric array, as a plain float."""
    return float(samples[0])


def _summary(point: float, samples: np.ndarray, level: float) -> dict[str, float]:
    """``{"value", "low", "high"}`` with the full-test-set value, not the bootstrap mean."""
    low, high = _percentiles(samples, level)
    return {"value": float(point), "low": low, "high": high}


def intervals(
    true: Any,
    pred: Any,
    mean_value: float | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Percentile bootstrap intervals for MAE, RMSE and R^2 on a test set.

    With ``mean_value`` (the training mean age) also the mean predictor's MAE and the ratio of
    the model's MAE to it, both per resample on the same indices: the ratio says how much the
    model beats "always guess the average" with the test-set difficulty shared.

    Args:
        true: True ages (months).
        pred: Predicted ages (months), same length.
        mean_value: Training mean age, the constant mean predictor; None to skip.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling.
        level: Confidence level in (0, 1).

    Returns:
        A JSON-serialisable dict: method, n_resamples, seed, level, n and one
        ``{"value", "low", "high"}`` dict per metric.
    """
    level = _check_level(level)
    t, p = _as_pair(true, pred)
    idx = resample_indices(len(t), n_resamples, seed)
    full = metric_samples(t, p, np.arange(len(t)))
    boot = metric_samples(t, p, idx)
    out: dict[str, Any] = {
        "method": METHOD,
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "level": level,
        "n": len(t),
    }
    for name in METRICS:
        out[name] = _summary(_point(full[name]), boot[name], level)
    if mean_value is not None:
        const = np.full(len(t), _finite_scalar(mean_value, "mean_value"))
        mean_full = metric_samples(t, const, np.arange(len(t)))["mae"]
        mean_boot = metric_samples(t, const, idx)["mae"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_full = np.where(mean_full > 0, full["mae"] / mean_full, np.nan)
            ratio_boot = np.where(mean_boot > 0, boot["mae"] / mean_boot, np.nan)
        out["mean_predictor_mae"] = _summary(_point(mean_full), mean_boot, level)
        out["ratio_to_mean_predictor"] = _summary(_point(ratio_full), ratio_boot, level)
    return out


def verdict(low: float, high: float, lower_is_better: bool = True) -> str:
    """Read an interval of ``a - b``: is a better, worse, or not shown to differ?

    Only an interval that lies wholly on one side of 0 is a verdict; one touching 0 (or NaN) is
    "no difference shown", which is not the same as "equal".
    """
    if lower_is_better:
        better, worse = high < 0, low > 0
    else:
        better, worse = low > 0, high < 0
    if better:
        return "better"
    if worse:
        return "worse"
    return "no difference shown"


def paired(
    true: Any,
    pred_a: Any,
    pred_b: Any,
    metric: str = "mae",
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Paired bootstrap of ``metric(a) - metric(b)`` on the same resampled images.

    Pairing matters: both models find the same images hard, so the difference varies far less
    between resamples than either metric does, and two overlapping separate intervals can still
    give a clear paired verdict.

    Args:
        true: True ages (months).
        pred_a: Predictions of model a.
        pred_b: Predictions of model b, or a scalar (a constant predictor such as the training
            mean) broadcast to every image.
        metric: One of ``LOWER_IS_BETTER`` ("mae", "rmse", "r2", "mse").
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling.
        level: Confidence level in (0, 1).

    Returns:
        ``{"metric", "a", "b", "difference", "low", "high", "verdict"}`` plus the method, n,
        n_resamples, seed and level; verdict is from a's side ("better" means a is better).
    """
    if metric not in LOWER_IS_BETTER:
        raise ValueError(f"metric must be one of {sorted(LOWER_IS_BETTER)}, got {metric!r}")
    level = _check_level(level)
    t, a = _as_pair(true, pred_a, "pred_a")
    if np.ndim(pred_b) == 0:
        pred_b = np.full(len(t), _finite_scalar(pred_b, "pred_b"))
    _, b = _as_pair(t, pred_b, "pred_b")
    idx = resample_indices(len(t), n_resamples, seed)
    everything = np.arange(len(t))
    value_a = _point(metric_samples(t, a, everything)[metric])
    value_b = _point(metric_samples(t, b, everything)[metric])
    diff = metric_samples(t, a, idx)[metric] - metric_samples(t, b, idx)[metric]
    low, high = _percentiles(diff, level)
    return {
        "metric": metric,
        "a": value_a,
        "b": value_b,
        "difference": value_a - value_b,
        "low": low,
        "high": high,
        "verdict": verdict(low, high, LOWER_IS_BETTER[metric]),
        "method": "paired " + METHOD,
        "n": len(t),
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "level": level,
    }


def claim_verdict(paper_value: float, low: float, high: float, lower_is_better: bool = True) -> str:
    """Compare a paper's reported number with our interval.

    "consistent" means the paper's value is one our test set could plausibly give; otherwise
    the side on which our whole interval lies decides. Non-finite inputs are refused, since a
    missing interval must not read as "ours worse".
    """
    for name, value in (("paper_value", paper_value), ("low", low), ("high", high)):
        _finite_scalar(value, name)
    if low > high:
        raise ValueError(f"low ({low}) must not exceed high ({high})")
    if low <= paper_value <= high:
        return "consistent"
    ours_better = high < paper_value if lower_is_better else low > paper_value
    return "ours better" if ours_better else "ours worse"


def across_seeds(values: Sequence[float] | np.ndarray) -> dict[str, float | int]:
    """Mean, sample SD (ddof=1), min and max of one metric over training seeds.

    This is the spread from training randomness, separate from the test-set bootstrap; with one
    seed there is no spread to estimate, so the SD is NaN rather than a misleading 0.
    """
    arr = np.asarray(values, dtype=float).ravel()
    if arr.size == 0:
        raise ValueError("values is empty: need at least one seed's value")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values contains non-finite value(s) (NaN or inf)")
    sd = float(np.std(arr, ddof=1)) if arr.size > 1 else math.nan
    return {
        "n": int(arr.size),
        "mean": float(arr.mean()),
        "sd": sd,
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


def _num(value: float, digits: int) -> str:
    """Fixed-point text with no "-0.0" (a rounded zero carries no sign)."""
    text = f"{value:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return text


def fmt(
    value: float,
    low: float | None = None,
    high: float | None = None,
    digits: int = 1,
) -> str:
    """``"13.8 (12.4-15.3)"``; ``"-1.2 (-2.3 to -0.1)"`` when a bound is negative.

    The " to " separator keeps signs unambiguous ("-2.3--0.1" would not be); NaN reads "n/a".
    """
    if value is None or math.isnan(value):
        return "n/a"
    text = _num(value, digits)
    if low is None or high is None:
        return text
    if math.isnan(low) or math.isnan(high):
        return f"{text} (n/a)"
    lo, hi = _num(low, digits), _num(high, digits)
    sep = " to " if lo.startswith("-") or hi.startswith("-") else "-"
    return f"{text} ({lo}{sep}{hi})"


def fmt_interval(d: dict[str, float], digits: int = 1) -> str:
    """:func:`fmt` of a ``{"value", "low", "high"}`` dict as returned by :func:`intervals`."""
    return fmt(d["value"], d.get("low"), d.get("high"), digits)
