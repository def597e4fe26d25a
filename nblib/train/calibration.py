"""What a model's number means for one child: its age-dependent bias removed, and a prediction
interval that holds, both fitted on validation data only.

**Bias.** A regressor trained to minimise its error pulls estimates toward the training mean:
young children come out too old and adolescents too young. The correction is linear in the
prediction, per sex: on validation data, ``pred = a + b * true`` is fitted by least squares and
a prediction is mapped to ``(pred - a) / b``, so that at every true age the corrected estimate
is unbiased on average (the correction used for the "brain-age gap": Smith et al. 2019, de
Lange and Cole 2020). It trades a little overall error for no age-dependent bias, which is what
a reading of one child's bone age needs.

**Interval.** Split conformal prediction (Vovk et al. 2005; Lei et al. 2018), normalised by a
difficulty estimate: residuals grow with age, so the validation residuals' mean absolute size is
estimated as a function of the corrected age (piecewise linear between age-bin centres) on one
half of the validation set, and the conformal quantile of the residuals divided by it on the
other half. With exchangeable images, a new image's interval ``c +- q * s(c)`` covers its true
age with probability at least ``level`` (a marginal guarantee, not one per child).

**Checking it.** Every coverage comes with its 95% Wilson interval and a verdict against the
nominal level. :func:`cross_validated` measures the same calibration on validation folds it did
not see, which tells a shift between validation and test images apart from a failing method:
``python -m nblib.train.calibration RUN/07_beyond`` prints both for a finished notebook 07.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from nblib.core import results, runfiles

if TYPE_CHECKING:
    import pandas as pd

MIN_PER_SEX = 30  # fewer validation images of a sex than this: one correction for both
BINS = 5  # age bins of the difficulty estimate
MIN_SCALE = 1.0  # months: the difficulty never falls below this


@dataclasses.dataclass(frozen=True)
class Calibration:
    """A fitted correction and interval; ``to_dict``/``from_dict`` keep it beside a model."""

    bias: dict  # "F", "M" or "all" -> [a, b] of pred = a + b * true
    knots: list  # corrected ages at which the difficulty is known
    scales: list  # mean absolute residual (months) at those ages
    q: float  # conformal quantile of |residual| / difficulty
    level: float
    n: int  # validation images used

    def correct(self, pred, male=None) -> np.ndarray:
        """``pred`` with the age-dependent bias removed (``male``: bool per image, or None)."""
        pred = np.asarray(pred, np.float64)
        if "all" in self.bias or male is None:
            a, b = self.bias.get("all", _pooled(self.bias))
            return (pred - a) / b
        male = np.asarray(male, bool)
        out = np.empty_like(pred)
        for sex, mask in (("M", male), ("F", ~male)):
            a, b = self.bias[sex]
            out[mask] = (pred[mask] - a) / b
        return out

    def scale(self, corrected) -> np.ndarray:
        """The difficulty (months) at each corrected age."""
        return np.maximum(np.interp(corrected, self.knots, self.scales), MIN_SCALE)

    def interval(self, corrected) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` around corrected estimates, at ``level``."""
        half = self.q * self.scale(np.asarray(corrected, np.float64))
        return corrected - half, corrected + half

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})


def _pooled(bias: dict) -> list:
    return [
        float(np.mean([v[0] for v in bias.values()])),
        float(np.mean([v[1] for v in bias.values()])),
    ]


def _line(true: np.ndarray, pred: np.ndarray) -> list:
    """Least-squares ``pred = a + b * true``; a slope too flat to invert is refused."""
    b, a = np.polyfit(true, pred, 1)
    if not b > 0.2:
        raise ValueError(
            f"the predictions hardly follow the true ages on validation data (slope {b:.2f}): "
            "the model has not learnt enough for its bias to be corrected"
        )
    return [float(a), float(b)]


def fit_bias(pred, true, male) -> dict:
    """Per-sex linear bias of ``pred`` against ``true`` (pooled when a sex has too few)."""
    pred, true, male = (np.asarray(v) for v in (pred, true, male))
    male = male.astype(bool)
    if min(male.sum(), (~male).sum()) < MIN_PER_SEX:
        return {"all": _line(true.astype(float), pred.astype(float))}
    return {
        s: _line(true[m].astype(float), pred[m].astype(float))
        for s, m in (("M", male), ("F", ~male))
    }


def conformal_quantile(scores, level: float) -> float:
    """The ``ceil((n + 1) * level)``-th smallest score: the split-conformal quantile."""
    scores = np.sort(np.asarray(scores, np.float64))
    k = math.ceil((len(scores) + 1) * level)
    return float("inf") if k > len(scores) else float(scores[k - 1])


def _difficulty(corrected: np.ndarray, residual: np.ndarray) -> tuple[list, list]:
    """Mean absolute residual in age bins of equal count, at the bins' centres."""
    bins = max(1, min(BINS, len(corrected) // 20))
    order = np.argsort(corrected)
    knots, scales = [], []
    for chunk in np.array_split(order, bins):
        knots.append(float(np.mean(corrected[chunk])))
        scales.append(float(max(np.mean(np.abs(residual[chunk])), MIN_SCALE)))
    return knots, scales


def fit(pred, true, male, level: float = 0.9, seed: int = 0) -> Calibration:
    """Fit the bias correction on every validation image, then the difficulty on one half and
    the conformal quantile on the other (seeded halves), so that the quantile is computed on
    residuals the difficulty estimate never saw."""
    if not 0 < level < 1:
        raise ValueError(f"level {level} is not between 0 and 1")
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    male = np.asarray(male, bool)
    if len(pred) != len(true) or len(pred) < 4 or not np.isfinite(pred).all():
        raise ValueError(
            f"need at least 4 finite validation predictions with labels, got {len(pred)}"
        )
    bias = fit_bias(pred, true, male)
    probe = Calibration(bias, [0.0], [1.0], 1.0, level, len(pred))
    corrected = probe.correct(pred, male)
    residual = true - corrected
    order = np.random.default_rng(seed).permutation(len(pred))
    half_a, half_b = order[: len(order) // 2], order[len(order) // 2 :]
    knots, scales = _difficulty(corrected[half_a], residual[half_a])
    scaled = dataclasses.replace(probe, knots=knots, scales=scales)
    q = conformal_quantile(np.abs(residual[half_b]) / scaled.scale(corrected[half_b]), level)
    return dataclasses.replace(scaled, q=q)


def coverage_interval(hits: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a coverage of ``hits`` out of ``n`` (Wilson 1927): the share's
    sampling uncertainty, sound near 0 and 1 where the normal approximation is not."""
    if n <= 0 or not 0 <= hits <= n:
        raise ValueError(f"need 0 <= hits <= n and n > 0, got {hits} of {n}")
    z = float(NormalDist().inv_cdf(0.5 + confidence / 2))
    share = hits / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def verdict(level: float, low: float, high: float) -> str:
    """ "holds" where the nominal level lies in the coverage's interval, else "below" or
    "above" it: a coverage is judged by its interval, not by its point value."""
    return "holds" if low <= level <= high else ("below" if high < level else "above")


def _judged(inside: np.ndarray, widths: np.ndarray, level: float) -> dict:
    hits, n = int(inside.sum()), int(len(inside))
    low, high = coverage_interval(hits, n)
    return {
        "level": level,
        "coverage": hits / n,
        "coverage_low": low,
        "coverage_high": high,
        "verdict": verdict(level, low, high),
        "median_width": float(np.median(widths)),
        "n": n,
    }


def coverage(cal: Calibration, pred, true, male) -> dict:
    """On data the calibration never saw: the share of true ages inside the intervals with its
    95% Wilson interval and the verdict against the nominal level, and the intervals' median
    width (months)."""
    corrected = cal.correct(pred, male)
    low, high = cal.interval(corrected)
    true = np.asarray(true, np.float64)
    return _judged((true >= low) & (true <= high), high - low, cal.level)


def cross_validated(pred, true, male, level: float = 0.9, folds: int = 5, seed: int = 0) -> dict:
    """The whole calibration (correction, difficulty, quantile) fitted ``folds`` times on all
    validation images but one fold and measured on that fold: the coverage it reaches on images
    exchangeable with its own, to hold against a test set's. A test coverage below a validation
    coverage that holds says that the test images or their labels differ from validation's,
    not that the method fails."""
    pred, true = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    male = np.asarray(male, bool)
    if folds < 2 or len(pred) < 4 * folds:
        raise ValueError(f"need at least {4 * folds} validation images for {folds} folds")
    inside, widths = np.zeros(len(pred), bool), np.zeros(len(pred))
    parts = np.array_split(np.random.default_rng(seed).permutation(len(pred)), folds)
    for k, held in enumerate(parts):
        rest = np.concatenate([p for j, p in enumerate(parts) if j != k])
        cal = fit(pred[rest], true[rest], male[rest], level=level, seed=seed)
        low, high = cal.interval(cal.correct(pred[held], male[held]))
        inside[held] = (true[held] >= low) & (true[held] <= high)
        widths[held] = high - low
    return {**_judged(inside, widths, level), "folds": folds}


SAVED = {"validation": runfiles.VALIDATION_PREDICTIONS, "test": runfiles.PREDICTIONS}


def saved_predictions(folder: Path | str, split: str) -> pd.DataFrame:
    """A finished notebook 07's saved predictions of one split (``validation`` or ``test``):
    ``id, true, predicted, male, corrected`` and, on test, the intervals."""
    df = results.read_csv(Path(folder) / SAVED[split])
    return df[df["split"] == split] if "split" in df.columns else df


def check(folder: Path | str, folds: int = 5) -> dict:
    """A finished notebook 07's intervals judged twice: on validation folds the calibration did
    not see (refitted per fold, its run's seed and level) and on the test images with the
    intervals it saved. ``{"validation_cv": ..., "test": ...}``."""
    folder = Path(folder)
    cfg = results.read_json(folder / runfiles.CONFIG)
    val, test = saved_predictions(folder, "validation"), saved_predictions(folder, "test")
    level, seed = float(cfg["interval_level"]), int(cfg["seed"])
    male = val["male"].astype(bool).to_numpy()
    cv = cross_validated(val["predicted"], val["true"], male, level, folds=folds, seed=seed)
    true = test["true"].to_numpy(float)
    low, high = test["interval_low"].to_numpy(float), test["interval_high"].to_numpy(float)
    return {"validation_cv": cv, "test": _judged((true >= low) & (true <= high), high - low, level)}


def _line_of(name: str, c: dict) -> str:
    return (
        f"{name}: {c['coverage']:.1%} ({c['coverage_low']:.1%}-{c['coverage_high']:.1%}) of "
        f"{c['n']} inside the {c['level']:.0%} intervals, {c['verdict']}; median width "
        f"{c['median_width']:.1f} months"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m nblib.train.calibration",
        description="judge a finished notebook 07's prediction intervals on validation folds "
        "and on its test images, each coverage with its 95%% Wilson interval",
    )
    parser.add_argument("folder", help="a run's 07_beyond folder")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    try:
        out = check(args.folder, args.folds)
    except (OSError, KeyError, ValueError) as e:
        print(f"error: {args.folder}: {e}", file=sys.stderr)
        return 2
    print(
        _line_of(
            f"validation, {args.folds}-fold (refitted without each fold)", out["validation_cv"]
        )
    )
    print(_line_of("test, the saved intervals", out["test"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
