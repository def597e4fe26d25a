"""Test-set predictions and metrics, and the mean-predictor floor.

The tables built from them (Table I, the error by age band and sex) are in :mod:`nblib.report.tables`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from nblib.data import pipeline
from nblib.train import metrics, statistics

# The test-set bootstrap's seed: a property of the analysis, not of training, so one fixed value
# for every model and run (two runs' intervals then differ only where their predictions do).
BOOTSTRAP_SEED = 0


def predict(model, df: pd.DataFrame, ds) -> pd.DataFrame:
    """Predictions of ``model`` over ``ds`` (built from ``df`` without shuffling), one row per image."""
    pred = np.asarray(model.predict(ds, verbose=0), np.float64).ravel()
    if len(pred) != len(df):
        raise ValueError(
            f"Got {len(pred)} predictions for {len(df)} images: was the dataset shuffled?"
        )
    return pd.DataFrame(
        {
            "id": df["id"].to_numpy(),
            "true": df["boneage"].to_numpy(float),
            "predicted": pred,
            "male": df["male"].to_numpy(bool),
            "split": df["split"].to_numpy(),
        }
    )


def loss_value(loss: str, y_true, y_pred) -> float:
    """The training loss on the test set: ``msle`` (paper 1) or ``mse`` (paper 2)."""
    m = metrics.regression(y_true, y_pred)
    return m["msle"] if loss == "msle" else m["mse"]


def evaluate(
    model, test_df: pd.DataFrame, test_ds, loss: str = "msle"
) -> tuple[pd.DataFrame, dict]:
    """Predict the test set; return its predictions (one row per image) and metrics (with ``loss``).

    The caller writes the predictions where they belong (``results.write_csv``).
    """
    pred = predict(model, test_df, test_ds)
    out = metrics.regression(pred["true"], pred["predicted"])
    out["loss"] = loss_value(loss, pred["true"], pred["predicted"])
    return pred, out


@dataclasses.dataclass
class Scores:
    """A model's test predictions (one row per image), its test metrics, the mean predictor's,
    and the bootstrap intervals of its test metrics (:func:`intervals`; None where the test
    set cannot give one)."""

    predictions: pd.DataFrame
    test: dict
    mean: dict
    intervals: dict | None = None


def score(
    model,
    parts: dict[str, pd.DataFrame],
    ds: dict,
    loss: str = "msle",
    seed: int = BOOTSTRAP_SEED,
) -> Scores:
    """Evaluate ``model`` on the test split (``parts["test"]``, fed by ``ds["test"]``) beside
    predicting the training split's mean age, with the intervals of its test metrics (bootstrap
    ``seed``: fixed, not the training seed). The caller writes what it returns."""
    pred, test = evaluate(model, parts["test"], ds["test"], loss=loss)
    train_mean = float(parts["train"]["boneage"].mean())
    ci = intervals(pred["true"], pred["predicted"], train_mean, seed=seed)
    return Scores(pred, test, mean_predictor(parts["train"], parts["test"], loss=loss), ci)


def intervals(true, pred, train_mean: float | None, seed: int = BOOTSTRAP_SEED) -> dict | None:
    """Bootstrap 95% intervals of a model's test MAE, RMSE, R^2 and ratio to the mean predictor
    (:func:`nblib.train.statistics.intervals`), as ``metrics.json`` stores them beside the test
    metrics; ``train_mean`` is kept in the result (``"train_mean"``) so that a report can pair
    the model with the mean predictor on the same images later.

    None where no interval exists: fewer than two test images, or a prediction that is not a
    number (a diverged model). A run must still write its results then, so this never raises
    for what a model predicted.
    """
    try:
        out = statistics.intervals(true, pred, mean_value=train_mean, seed=seed)
    except ValueError:
        return None
    out["train_mean"] = None if train_mean is None else float(train_mean)
    return out


def score_rows(
    model,
    rows: pd.DataFrame,
    image_size: int,
    batch_size: int,
    train_mean: float,
    loss: str = "msle",
    seed: int = BOOTSTRAP_SEED,
) -> dict:
    """Predictions, metrics and intervals of ``model`` on ``rows`` outside its own split (the
    official test table, :mod:`nblib.data.test200`), beside the mean predictor that predicts
    ``train_mean`` (the model's own training mean) for every row."""
    ds = pipeline.make_dataset(rows, image_size, batch_size, training=False)
    pred, test = evaluate(model, rows, ds, loss=loss)
    const = np.full(len(rows), float(train_mean))
    mean = metrics.regression(rows["boneage"], const)
    mean["loss"] = loss_value(loss, rows["boneage"], const)
    return {
        "predictions": pred,
        "test": test,
        "mean_predictor": mean,
        "intervals": intervals(pred["true"], pred["predicted"], train_mean, seed=seed),
        "n": len(rows),
    }


def mean_predictor(train_df: pd.DataFrame, test_df: pd.DataFrame, loss: str = "msle") -> dict:
    """Metrics of predicting the training mean for every test image: the floor a model must beat."""
    p = np.full(len(test_df), float(train_df["boneage"].mean()))
    out = metrics.regression(test_df["boneage"], p)
    out["loss"] = loss_value(loss, test_df["boneage"], p)
    return out
