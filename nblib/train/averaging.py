"""Tail weight averaging and the batch-norm statistics of an averaged model."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from nblib.train import checkpoints


def averaged_epochs(cfg, total: int) -> int:
    """How many final epochs' weights the model is averaged over (``cfg.average_epochs``, at
    most ``total``); 0: the model is the best epoch's, by the monitored validation metric."""
    return max(0, min(int(getattr(cfg, "average_epochs", 0) or 0), total))


class Average:
    """The running mean of the weights at the end of each of a training's last ``k`` epochs.

    Under a cosine schedule those epochs take small steps around one minimum; their mean (tail
    averaging, as in stochastic weight averaging) is steadier than any single epoch, whose test
    error can swing by months from one epoch to the next on small data, and unlike "the best
    epoch" it does not hang on a small validation set's noise. Checkpointed
    as ``average-<epoch>.weights.npz`` named in the state, so a killed run resumes it exactly;
    the state's ``averaged`` (first and last epoch) gives the count. Integer variables (the
    flips' random states) are not averaged: they keep the latest epoch's values.
    """

    def __init__(self, ckpt: Path, state: dict, total: int, k: int):
        self.ckpt, self.state, self.first, self.k = ckpt, state, total - k + 1, k
        self.arrays = None
        name = state.get("average_file")
        if k and name and (ckpt / name).is_file():
            with np.load(ckpt / name) as saved:
                self.arrays = [saved[f"w{i}"] for i in range(len(saved.files))]

    def add(self, model: keras.Model, epoch: int) -> None:
        if not self.k or epoch < self.first:
            return
        now = [keras.ops.convert_to_numpy(v) for v in model.weights]
        count = epoch - self.first + 1
        if self.arrays is None or count == 1:
            self.arrays = [a.astype(np.float64) if _floating(a) else a for a in now]
        else:
            for i, w in enumerate(now):
                if _floating(w):
                    self.arrays[i] += (w - self.arrays[i]) / count
                else:
                    self.arrays[i] = w
        name = f"average-{epoch:03d}.weights.npz"
        checkpoints.write_npz(self.ckpt / name, w=self.arrays)
        self.state.update(average_file=name, averaged=[self.first, epoch])

    def forget_older(self) -> None:
        for f in self.ckpt.glob("average-*.weights.npz"):
            if f.name != self.state.get("average_file"):
                f.unlink(missing_ok=True)


def _floating(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.floating)


class _BatchStatistics(keras.Model):
    """``model`` called in training mode, returning what its BatchNorms' moving statistics hold
    after the call: with momentum 0, the batch's own statistics. A model of its own, so that its
    ``predict_on_batch`` runs compiled (``tf.function``, ``jax.jit``) and keeps those updates."""

    def __init__(self, model: keras.Model, statistics: list):
        super().__init__(name="batch_statistics")
        self.inner = model
        self._statistics = lambda: statistics  # not tracked twice: they are the inner model's

    def call(self, x):
        self.inner(x, training=True)
        return [v.value for v in self._statistics()]


def reestimate_batch_norm(model: keras.Model, train_ds, batch_size: int) -> int:
    """Recompute every BatchNorm's moving mean and variance as the average over the training
    images of their batch statistics, the model's weights fixed ("precise BN").

    After weights are averaged, the moving statistics gathered along the way belong to none of
    the weights they are used with; this makes them the averaged model's own. One pass over the
    training images in their fixed order, batches of ``batch_size``, with the model's random
    augmentation as in training. The pass is compiled; a last, shorter batch runs eagerly, which
    costs less than compiling the model a second time for its size (``benchmarks/cpu.md``).
    Returns the number of batches (0: no BatchNorm).
    """
    from nblib.data import pipeline

    bns = [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]
    if not bns:
        return 0
    source = getattr(train_ds, "source", None)
    if source is not None:
        plain = pipeline.BatchSource(
            source.images, source.labels, batch_size, False, None, source.seed, source.extra
        )
        batches = (plain[i][0] for i in range(len(plain)))
    else:  # a feed not made by nblib.data.pipeline: one epoch of it, in its own order
        batches = (b[0] if isinstance(b, tuple | list) else b for b in train_ds)
    momenta = [layer.momentum for layer in bns]
    statistics = [v for layer in bns for v in (layer.moving_mean, layer.moving_variance)]
    sums = [np.zeros(v.shape, np.float64) for v in statistics]
    forward = _BatchStatistics(model, statistics)
    n, full = 0, None
    try:
        for layer in bns:  # each call leaves its batch's own statistics in the moving ones
            layer.momentum = 0.0
        for x in batches:
            size = len(x[0] if isinstance(x, tuple | list) else x)
            full = size if full is None else full
            if size == full:
                got = forward.predict_on_batch(x)
            else:
                got = [keras.ops.convert_to_numpy(a) for a in forward(x)]
            for total, a in zip(sums, got, strict=True):
                total += a
            n += 1
    finally:
        for layer, m in zip(bns, momenta, strict=True):
            layer.momentum = m
    if n:
        for total, v in zip(sums, statistics, strict=True):
            v.assign((total / n).astype(v.dtype))
    return n
