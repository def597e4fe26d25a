"""Staged autoencoder pretraining (paper 2, Tables 1-2) and its reconstruction metrics.

Paper 2 compiled its autoencoder with ``metrics=["accuracy"]`` and reports that "accuracy" per
stage (0.4866 ... 0.6839). In Keras 2 (``tf.keras`` ``compile_utils.MetricsContainer.
_get_metric_object``), the string "accuracy" resolves by output shape: when the model's output
has a last dimension of 1 - as a one-channel image reconstruction does - it becomes
``binary_accuracy``, i.e. ``mean(y_true == (y_pred > 0.5))``. The comparison is with the raw
target, not a thresholded one, so on an image scaled to [0, 1] only pixels that are exactly 0 or
exactly 1 can ever count as "correct": the number tracks how much pure-black background (and
saturated white) the reconstruction reproduces, not reconstruction quality. We reproduce it as
:class:`KerasTwoAccuracy` and add PSNR and SSIM, which do measure reconstruction.
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd

from nblib.core import results, runfiles
from nblib.train import fitting


@keras.saving.register_keras_serializable(package="nblib")
class KerasTwoAccuracy(keras.metrics.MeanMetricWrapper):
    """Keras 2's ``"accuracy"`` on a one-channel output: binary accuracy at 0.5 against raw targets."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(fn=keras_two_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="nblib")
def keras_two_accuracy(y_true, y_pred):
    """Per-sample ``mean(y_true == (y_pred > 0.5))`` over pixels (Keras 2 ``binary_accuracy``)."""
    y_pred = keras.ops.cast(y_pred > 0.5, y_true.dtype)
    eq = keras.ops.cast(keras.ops.equal(y_true, y_pred), "float32")
    return keras.ops.mean(keras.ops.reshape(eq, (keras.ops.shape(eq)[0], -1)), axis=-1)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """The 11x11 Gaussian window (sigma 1.5) of Wang et al.'s SSIM, as a conv kernel [k, k, 1, 1]."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return np.outer(g, g).astype("float32")[:, :, None, None]


_WINDOW = _gaussian_window()


@keras.saving.register_keras_serializable(package="nblib")
def psnr(y_true, y_pred):
    """Per-image PSNR (dB) of images in [0, 1]: ``10 log10(1 / MSE)`` (``keras.ops``: any backend)."""
    ops = keras.ops
    t, p = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    mse = ops.mean(ops.reshape(ops.square(t - p), (ops.shape(t)[0], -1)), axis=-1)
    return -10.0 * ops.log(mse) / np.log(10.0)


@keras.saving.register_keras_serializable(package="nblib")
def ssim(y_true, y_pred):
    """Per-image SSIM of images in [0, 1] (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5,
    K1 0.01, K2 0.03, valid positions only, averaged over positions and channels: the definition
    ``tf.image.ssim`` uses), in ``keras.ops`` so it runs on any backend."""
    ops = keras.ops
    t, p = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
    # channels into the batch: each channel is filtered on its own
    c = ops.shape(t)[-1]
    t = ops.reshape(ops.transpose(t, (0, 3, 1, 2)), (-1, ops.shape(t)[1], ops.shape(t)[2], 1))
    p = ops.reshape(ops.transpose(p, (0, 3, 1, 2)), (-1, ops.shape(p)[1], ops.shape(p)[2], 1))
    w = ops.convert_to_tensor(_WINDOW)

    def blur(x):
        return ops.conv(x, w, strides=1, padding="valid")

    c1, c2 = 0.01**2, 0.03**2
    mt, mp = blur(t), blur(p)
    vt = blur(t * t) - mt * mt
    vp = blur(p * p) - mp * mp
    cov = blur(t * p) - mt * mp
    s = ((2 * mt * mp + c1) * (2 * cov + c2)) / ((mt * mt + mp * mp + c1) * (vt + vp + c2))
    per_channel = ops.mean(ops.reshape(s, (ops.shape(s)[0], -1)), axis=-1)
    return ops.mean(ops.reshape(per_channel, (-1, c)), axis=-1)


@keras.saving.register_keras_serializable(package="nblib")
class PSNR(keras.metrics.MeanMetricWrapper):
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""

    def __init__(self, name: str = "psnr", dtype=None):
        super().__init__(fn=psnr, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


@keras.saving.register_keras_serializable(package="nblib")
class SSIM(keras.metrics.MeanMetricWrapper):
    """Structural similarity for images in [0, 1]."""

    def __init__(self, name: str = "ssim", dtype=None):
        super().__init__(fn=ssim, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


def compile_autoencoder(model: keras.Model, cfg) -> keras.Model:
    """Paper 2, Table 1: Adam (``cfg.learning_rate``), MSE loss, "accuracy"; plus PSNR and SSIM."""
    return fitting.compile_model(
        model, cfg, loss="mse", metrics=[KerasTwoAccuracy(), PSNR(), SSIM()]
    )


def stage_ends(stages) -> list[int]:
    """Cumulative epoch at the end of each stage: (300, 200, 100) -> [300, 500, 600]."""
    return [int(v) for v in np.cumsum([int(s) for s in stages])]


def pretrain(
    cfg, model: keras.Model, train_ds, val_ds, stages=None, run_dir=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train through the stages (training continues across them); return ``(stages, history)``.

    Writes ``stages.csv`` (one row per stage) beside ``history.csv`` (one row per epoch); the
    returned history is the one the last stage's training returned, every epoch of every stage.

    Each stage trains to its cumulative epoch through :func:`fitting.fit`, so a killed run
    resumes inside the stage it was in. A stage's row holds the training loss and accuracy of its
    last epoch (what Table 2 reports) and the validation MSE, accuracy, PSNR and SSIM.
    """
    stages = list(stages or cfg.ae_stages)
    run_dir = run_dir or cfg.run_dir
    ends = stage_ends(stages)
    stages_path = run_dir / runfiles.STAGES
    done = results.read_csv(stages_path) if stages_path.is_file() else pd.DataFrame()
    rows = [
        r
        for r in done.to_dict("records")
        if r["stage"] <= len(ends) and r["end_epoch"] == ends[r["stage"] - 1]
    ]
    history = None  # the last stage's fit returns every epoch of every stage
    for i, end in enumerate(ends, start=1):
        if i <= len(rows):  # finished before an interruption: its row was measured then
            continue
        print(f"Stage {i}/{len(stages)}: training to epoch {end}")
        history = fitting.fit(
            model,
            train_ds,
            val_ds,
            cfg,
            run_dir=run_dir,
            epochs=end,
            restore_best=False,
            progress_total=ends[-1],
        )
        last = history[history["epoch"] == end].iloc[-1]
        val = model.evaluate(val_ds, verbose=0, return_dict=True)
        rows.append(
            {
                "stage": i,
                "epochs": stages[i - 1],
                "end_epoch": end,
                "loss": float(last["loss"]),
                "accuracy": float(last["accuracy"]),
                "val_loss": float(val["loss"]),
                "val_accuracy": float(val["accuracy"]),
                "psnr": float(val["psnr"]),
                "ssim": float(val["ssim"]),
            }
        )
        results.write_csv(stages_path, pd.DataFrame(rows))
    if history is None:  # every stage had finished before this call: load the final weights
        history = fitting.fit(
            model, train_ds, val_ds, cfg, run_dir=run_dir, epochs=ends[-1], restore_best=False
        )
    return pd.DataFrame(rows), history
