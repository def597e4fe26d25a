"""Regression metrics: NumPy functions for final test numbers, Keras metrics for per-epoch curves.

Definitions follow paper 1 (RMSE; MAPE in percent; R^2 = 1 - SS_res / SS_tot) and paper 2 (MAE,
MSE). MSLE is Keras' ``mean((log1p(y) - log1p(p))^2)`` with predictions clipped at 0, the loss
paper 1 trains with.
"""

from __future__ import annotations

import keras
import numpy as np


def regression(y_true, y_pred) -> dict[str, float]:
    """MAE, MSE, RMSE (months), MAPE (%), R^2 (fraction) and MSLE of predictions."""
    t = np.asarray(y_true, np.float64).ravel()
    p = np.asarray(y_pred, np.float64).ravel()
    if t.shape != p.shape or t.size == 0:
        raise ValueError(
            f"y_true and y_pred must be non-empty and the same length ({t.size} vs {p.size})"
        )
    err = p - t
    mse = float(np.mean(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    return {
        "mae": float(np.mean(np.abs(err))),
        "mse": mse,
        "rmse": float(np.sqrt(mse)),
        "mape": float(100 * np.mean(np.abs(err) / np.maximum(np.abs(t), 1e-7))),
        "r2": float(1 - np.sum(err**2) / ss_tot) if ss_tot > 0 else float("nan"),
        "msle": float(np.mean((np.log1p(np.maximum(p, 0)) - np.log1p(np.maximum(t, 0))) ** 2)),
    }


@keras.saving.register_keras_serializable(package="nblib")
class R2(keras.metrics.Metric):
    """Coefficient of determination accumulated over an epoch (accepts y of shape [B] or [B, 1])."""

    def __init__(self, name: str = "r2", **kwargs):
        super().__init__(name=name, **kwargs)
        self.n = self.add_variable((), initializer="zeros", name="n")
        self.sum_y = self.add_variable((), initializer="zeros", name="sum_y")
        self.sum_y2 = self.add_variable((), initializer="zeros", name="sum_y2")
        self.ss_res = self.add_variable((), initializer="zeros", name="ss_res")

    def update_state(self, y_true, y_pred, sample_weight=None):
        t = keras.ops.reshape(keras.ops.cast(y_true, "float32"), (-1,))
        p = keras.ops.reshape(keras.ops.cast(y_pred, "float32"), (-1,))
        self.n.assign_add(keras.ops.cast(keras.ops.size(t), "float32"))
        self.sum_y.assign_add(keras.ops.sum(t))
        self.sum_y2.assign_add(keras.ops.sum(t * t))
        self.ss_res.assign_add(keras.ops.sum((t - p) ** 2))

    def result(self):
        ss_tot = self.sum_y2 - self.sum_y**2 / keras.ops.maximum(self.n, 1.0)
        return 1.0 - self.ss_res / keras.ops.maximum(ss_tot, 1e-7)

    def reset_state(self):
        for v in self.variables:
            v.assign(0.0)


def keras_regression_metrics() -> list:
    """Per-epoch metrics of paper 1's curves (RMSE, MAPE, R^2) plus MAE."""
    return [
        keras.metrics.MeanAbsoluteError(name="mae"),
        keras.metrics.RootMeanSquaredError(name="rmse"),
        keras.metrics.MeanAbsolutePercentageError(name="mape"),
        R2(name="r2"),
    ]
