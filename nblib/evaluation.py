"""Test-set predictions and metrics, the mean-predictor floor, and errors by age band and sex."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib import metrics

AGE_BANDS_YEARS = ((0, 2), (2, 6), (6, 10), (10, 14), (14, 100))


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


def mean_predictor(train_df: pd.DataFrame, test_df: pd.DataFrame, loss: str = "msle") -> dict:
    """Metrics of predicting the training mean for every test image: the floor a model must beat."""
    p = np.full(len(test_df), float(train_df["boneage"].mean()))
    out = metrics.regression(test_df["boneage"], p)
    out["loss"] = loss_value(loss, test_df["boneage"], p)
    return out


def by_group(pred: pd.DataFrame) -> pd.DataFrame:
    """MAE and bias per age band (years: 0-2, 2-6, 6-10, 10-14, 14+) and per sex."""
    rows = []
    years = pred["true"] / 12.0
    err = pred["predicted"] - pred["true"]
    groups = [
        (f"{lo}-{hi} y" if hi < 100 else f"{lo}+ y", (years >= lo) & (years < hi))
        for lo, hi in AGE_BANDS_YEARS
    ]
    groups += [("female", ~pred["male"].astype(bool)), ("male", pred["male"].astype(bool))]
    for name, sel in groups:
        rows.append(
            {
                "group": name,
                "n": int(sel.sum()),
                "mae": float(err[sel].abs().mean()) if sel.any() else np.nan,
                "bias": float(err[sel].mean()) if sel.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)
