"""Compile and train with checkpoints that survive a kill.

``fit`` trains up to a *total* number of epochs. After every epoch it writes, atomically, the
history row (``history.csv``), the weights and the optimizer's state, and the best weights so
far. Started again (the notebook re-run after a crash, or ``run_all.sh`` after an interruption)
it continues from the last finished epoch with the same optimizer state, so an interrupted run
ends where an uninterrupted one ends. Calling it again with a larger total continues training:
staged autoencoder pretraining relies on this.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from nblib import metrics as nb_metrics
from nblib import results, runfiles


def backend() -> str:
    """The Keras backend in use: ``tensorflow`` (the default), ``jax`` or ``torch``."""
    return keras.backend.backend()


def accelerators() -> list[str]:
    """Names of the GPUs the backend sees (empty on a CPU-only machine)."""
    b = backend()
    if b == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if b == "torch":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [torch.cuda.get_device_name(i) for i in range(n)]
    from nblib import tfbackend

    return tfbackend.gpu_names()


def gpu_present() -> bool:
    return bool(accelerators())


def _switch(value: str) -> bool:
    return value == "on" or (value == "auto" and gpu_present())


def precision_policy(cfg) -> str:
    """``float32``, or with mixed precision on: ``mixed_bfloat16`` where the hardware has bf16
    (NVIDIA Ampere and later, and CPUs), else ``mixed_float16``."""
    if not _switch(cfg.mixed_precision):
        return "float32"
    names = " ".join(accelerators()).upper()
    old_gpu = names and not any(
        k in names
        for k in (
            "A100",
            "A10",
            "A30",
            "A40",
            "H100",
            "H200",
            "L4",
            "L40",
            "RTX 30",
            "RTX 40",
            "RTX 50",
            "B100",
            "B200",
            "GH200",
            "RTX A",
        )
    )
    return "mixed_float16" if old_gpu else "mixed_bfloat16"


def strategy_kind(requested: str, n_gpus: int, tf_config: str | None) -> str:
    """Which distribution strategy ``requested`` means on this machine.

    ``auto`` = ``multiworker`` when ``TF_CONFIG`` describes a cluster, ``mirrored`` when more than
    one GPU is visible, ``default`` (one device) otherwise; any other value is taken as given.
    """
    if requested != "auto":
        return requested
    if tf_config:
        return "multiworker"
    return "mirrored" if n_gpus > 1 else "default"


class _NoScope:
    """What ``setup`` returns where the backend distributes without a scope (JAX, PyTorch)."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def make_deterministic(cfg) -> None:
    """Seed everything and make the backend's kernels deterministic when ``cfg.deterministic``.

    TensorFlow: ``tf.config.experimental.enable_op_determinism`` (ops without a deterministic
    kernel then raise instead of varying). JAX: XLA's ``--xla_gpu_deterministic_ops`` flag (XLA on
    a CPU is deterministic already), which JAX reads when it first touches a device: a notebook
    calls this before building any model. The input feed's order is a pure function of (seed,
    epoch) whatever the backend.
    """
    from nblib import config

    config.set_seed(cfg.seed)
    if not cfg.deterministic:
        return
    b = backend()
    if b == "tensorflow":
        from nblib import tfbackend

        tfbackend.enable_determinism()
    elif b == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        if flag not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    elif b == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def save_model(model: keras.Model, path: Path | str) -> Path:
    """Save ``model`` as ``.keras`` (atomically) without its training configuration.

    The saved file holds only built-in Keras layers and the weights: it loads with
    ``keras.saving.load_model(path, safe_mode=True)`` in a fresh interpreter, on any backend,
    without importing nblib (the training-only metrics, such as R2, stay behind), and it takes
    raw uint8 gray images ``[N, S, S, 1]``.
    """
    export = keras.Model.from_config(model.get_config())  # the architecture, no compile settings
    export.set_weights(model.get_weights())
    with results.atomic_path(path) as tmp:
        export.save(tmp)
    return Path(path)


def setup(cfg):
    """Seed, determinism, precision policy and distribution for ``cfg``; return a strategy.

    The returned object has ``scope()`` and ``num_replicas_in_sync``. TensorFlow:
    ``tf.distribute`` (MultiWorkerMirroredStrategy when ``TF_CONFIG`` is set, MirroredStrategy
    over several GPUs, or over the logical CPUs when ``mirrored`` is asked for on a CPU). JAX:
    ``keras.distribution.DataParallel`` over every device (after ``jax.distributed.initialize()``
    when ``multiworker`` is asked for), set globally, with a no-op scope. Mixed precision follows
    :func:`precision_policy`; the models keep their input layers and output in float32.
    """
    make_deterministic(cfg)
    keras.mixed_precision.set_global_policy(precision_policy(cfg))
    b = backend()
    if b == "jax":
        import jax

        kind = strategy_kind(cfg.strategy, len(accelerators()), os.environ.get("TF_CONFIG"))
        if kind == "multiworker":
            jax.distributed.initialize()
        if kind in ("mirrored", "multiworker") and len(jax.devices()) > 1:
            keras.distribution.set_distribution(
                keras.distribution.DataParallel(devices=jax.devices())
            )
        return _NoScope()
    if b != "tensorflow":
        return _NoScope()
    from nblib import tfbackend

    gpus = len(accelerators())
    return tfbackend.strategy(strategy_kind(cfg.strategy, gpus, os.environ.get("TF_CONFIG")))


def compile_model(
    model: keras.Model, cfg, loss: str = "msle", metrics: list | None = None
) -> keras.Model:
    """Adam at ``cfg.learning_rate``, ``loss`` (paper 1: MSLE; paper 2: MSE), per-epoch metrics.

    ``cfg.bn_momentum`` is applied to every BatchNorm first; ``cfg.clipnorm`` > 0 clips each
    step's gradient norm. ``cfg.xla`` compiles the step with XLA on TensorFlow; JAX always does.
    """
    from nblib.models import layers as model_layers

    model_layers.set_bn_momentum(model, cfg.bn_momentum)
    opt = {"clipnorm": cfg.clipnorm} if cfg.clipnorm else {}
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate, **opt),
        loss=loss,
        metrics=nb_metrics.keras_regression_metrics() if metrics is None else metrics,
        jit_compile=True if backend() == "jax" else _switch(cfg.xla),
    )
    return model


def lr_at(cfg, epoch: int, total: int) -> float:
    """Learning rate of 0-based ``epoch``: linear warmup, then constant or cosine to 5% of the base."""
    base = cfg.learning_rate
    if cfg.warmup_epochs and epoch < cfg.warmup_epochs:
        return base * (epoch + 1) / (cfg.warmup_epochs + 1)
    if cfg.lr_schedule == "cosine":
        span = max(1, total - cfg.warmup_epochs)
        t = min(1.0, (epoch - cfg.warmup_epochs) / span)
        return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t)))
    return base


class _Checkpointer(keras.callbacks.Callback):
    """Per-epoch history row, weights, optimizer state, best weights and early-stopping state."""

    def __init__(
        self,
        ckpt: Path,
        history_path: Path,
        rows: list,
        state: dict,
        cfg,
        total: int,
        monitor: str,
        progress_total: int | None = None,
    ):
        super().__init__()
        self.ckpt, self.history_path, self.rows, self.state = ckpt, history_path, rows, state
        self.cfg, self.total, self.monitor = cfg, total, monitor
        self.progress_total = max(total, progress_total or 0)
        self.mode_min = "acc" not in monitor and "r2" not in monitor
        self.first_epoch = None  # this call's first epoch, whose time includes graph building
        self.average = _Average(ckpt, state, total, averaged_epochs(cfg, total))

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch + 1
        if self.cfg.lr_schedule != "plateau":
            self.model.optimizer.learning_rate.assign(lr_at(self.cfg, epoch, self.total))
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
        row["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        row["seconds"] = time.perf_counter() - self.t0
        self.rows.append(row)
        value = logs.get(self.monitor, logs.get("loss"))
        better = (
            value is not None
            and not np.isnan(value)
            and (
                self.state["best"] is None
                or (value < self.state["best"] if self.mode_min else value > self.state["best"])
            )
        )
        if better:
            self.state.update(best=float(value), best_epoch=epoch + 1, wait=0)
            _save_weights(self.model, self.ckpt / runfiles.BEST_WEIGHTS)
        else:
            self.state["wait"] += 1
        if self.cfg.lr_schedule == "plateau" and self.state["wait"] and self.state["wait"] % 3 == 0:
            lr = self.model.optimizer.learning_rate
            lr.assign(
                max(float(keras.ops.convert_to_numpy(lr)) * 0.5, self.cfg.learning_rate * 0.01)
            )
        if self.cfg.patience and self.state["wait"] >= self.cfg.patience:
            self.model.stop_training = True
            self.state["stopped_early"] = True
        self.state["epoch"] = epoch + 1
        self.average.add(self.model, epoch + 1)  # before the state that vouches for it
        _save_checkpoint(self.model, self.ckpt, self.state)
        self.average.forget_older()
        results.write_csv(self.history_path, pd.DataFrame(self.rows))
        self._progress(epoch + 1, row)

    def _progress(self, done: int, row: dict) -> None:
        """One line per epoch, which ``run_all.sh`` shows on the console: epoch k/n, the
        latest validation metric, and the time left for this model's training (estimated from
        its last three epochs, leaving out the first one of this call, which builds the graph,
        once later ones exist)."""
        val = {k: v for k, v in row.items() if k.startswith("val_")}
        shown = next((k for k in ("val_mae", "val_loss") if k in val), None)
        timed = [r["seconds"] for r in self.rows if r["epoch"] >= (self.first_epoch or 0)]
        per_epoch = float(np.mean(timed[1:][-3:] if len(timed) > 1 else timed))
        left = (self.progress_total - done) * per_epoch
        print(
            f"[progress] {self.model.name} epoch {done}/{self.progress_total}: "
            f"loss {row['loss']:.4g}"
            + (f", {shown} {val[shown]:.4g}" if shown else "")
            + f"; {row['seconds']:.0f} s/epoch, ETA {results.duration(left)}",
            flush=True,
        )


def averaged_epochs(cfg, total: int) -> int:
    """How many final epochs' weights the model is averaged over (``cfg.average_epochs``, at
    most ``total``); 0: the model is the best epoch's, by the monitored validation metric."""
    return max(0, min(int(getattr(cfg, "average_epochs", 0) or 0), total))


class _Average:
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
        _write_npz(self.ckpt / name, w=self.arrays)
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
    costs less than compiling the model a second time for its size (Inception-V4 on the sample:
    15 s in all, against 66 s for the whole pass run eagerly). Returns the number of batches
    (0: no BatchNorm).
    """
    from nblib import pipeline

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
    else:  # a feed not made by nblib.pipeline: one epoch of it, in its own order
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


def _seed_states(model: keras.Model) -> list:
    """The random-number states of the model's layers (the flips' coins): saved with a checkpoint
    so that a resumed training draws what an uninterrupted one would have drawn."""
    return [
        g.state
        for layer in model._flatten_layers(include_self=False)
        for g in getattr(layer, "_seed_generators", [])
    ]


def _write_npz(path: Path, **groups) -> None:
    """Variables, group by group (``prefix=variables``), as ``<prefix><i>`` arrays of one
    ``.npz`` written atomically."""
    arrays = {
        f"{prefix}{i}": keras.ops.convert_to_numpy(v)
        for prefix, variables in groups.items()
        for i, v in enumerate(variables)
    }
    with results.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _save_weights(model: keras.Model, path: Path) -> None:
    """The model's weights, in order, as one ``.npz``: written every epoch, and about ten times
    faster than Keras' ``.weights.h5`` writer for a few hundred variables (Inception-V4 at width
    1/4: 0.2 s against 2.5 s)."""
    _write_npz(path, w=model.weights)


def _load_weights(model: keras.Model, path: Path) -> None:
    """Load what :func:`_save_weights` wrote, refusing weights of another architecture."""
    with np.load(path) as saved:
        arrays = [saved[f"w{i}"] for i in range(len(saved.files))]
    shapes = [tuple(v.shape) for v in model.weights]
    if [a.shape for a in arrays] != shapes:
        raise RuntimeError(
            f"{path} holds the weights of another model ({len(arrays)} arrays for this model's "
            f"{len(shapes)}); delete its folder to start this training again"
        )
    for v, a in zip(model.weights, arrays, strict=True):
        v.assign(a)


def _save_checkpoint(model: keras.Model, ckpt: Path, state: dict) -> None:
    _save_weights(model, ckpt / runfiles.LAST_WEIGHTS)
    _write_npz(
        ckpt / runfiles.OPTIMIZER_STATE, v=model.optimizer.variables, seed=_seed_states(model)
    )
    results.write_json(ckpt / runfiles.CHECKPOINT_STATE, state)  # last: vouches for the two above


def _restore_checkpoint(model: keras.Model, ckpt: Path) -> None:
    model.optimizer.build(model.trainable_variables)
    _load_weights(model, ckpt / runfiles.LAST_WEIGHTS)
    saved = np.load(ckpt / runfiles.OPTIMIZER_STATE)
    variables = model.optimizer.variables
    seeds = _seed_states(model)
    if len([f for f in saved.files if f.startswith("v")]) != len(variables):
        raise RuntimeError(
            f"Checkpoint {ckpt} does not match this model's optimizer; delete the folder "
            "to start this training again"
        )
    for i, v in enumerate(variables):
        v.assign(saved[f"v{i}"])
    for i, v in enumerate(seeds):
        if f"seed{i}" in saved.files:
            v.assign(saved[f"seed{i}"])


def _build_before_tracing(model: keras.Model, train_ds) -> None:
    """Create the optimizer's and the metrics' variables before the first step is traced.

    Keras on TensorFlow without a distribution strategy creates them inside the first traced
    step, and TensorFlow then traces that step a second time. Building them first from the
    feed's element spec halves that cost (ResNet-50 at 64 px, first epoch 61 s -> 38 s on 2
    cores) and changes no number.
    """
    if backend() != "tensorflow" or model.optimizer is None or model.optimizer.built:
        return
    spec = getattr(train_ds, "element_spec", None)
    build = getattr(model, "_symbolic_build", None)  # Keras' own pre-build, a private method
    with model.distribute_strategy.scope():
        if spec is not None and build is not None:
            build(data_batch=spec)
        else:
            model.optimizer.build(model.trainable_variables)


def fit(
    model: keras.Model,
    train_ds,
    val_ds,
    cfg,
    run_dir: Path | str | None = None,
    epochs: int | None = None,
    monitor: str = "val_loss",
    restore_best: bool = True,
    tag: str | None = None,
    verbose: int = 2,
    progress_total: int | None = None,
) -> pd.DataFrame:
    """Train ``model`` (compiled) to ``epochs`` total epochs (default ``cfg.epochs``), resumably.

    Writes ``history[_tag].csv`` in ``run_dir`` (default ``cfg.run_dir``) and checkpoints in
    ``run_dir/checkpoints/<tag or main>/``. Early stopping when ``cfg.patience > 0``; the best
    weights by ``monitor`` are restored at the end when ``restore_best``. Returns the history:
    one row per epoch (1-based ``epoch``, Keras' metric names, ``lr``, ``seconds``).
    ``progress_total`` is the epoch count the per-epoch progress line and its time estimate
    count to when the training goes on past this call (staged pretraining); it changes nothing
    else.
    """
    run_dir = Path(run_dir) if run_dir else cfg.run_dir
    total = int(epochs or cfg.epochs)
    ckpt = run_dir / runfiles.CHECKPOINTS / (tag or "main")
    history_path = run_dir / runfiles.history(tag)
    state_path = ckpt / runfiles.CHECKPOINT_STATE
    signature = _signature(model, cfg)
    state = {
        "epoch": 0,
        "best": None,
        "best_epoch": 0,
        "wait": 0,
        "stopped_early": False,
        "signature": signature,
    }
    rows: list[dict] = []
    if state_path.is_file() and json.loads(state_path.read_text()).get("signature") != signature:
        print(
            f"The checkpoint in {ckpt} was made with other settings (data, size, width, batch, rate or "
            "seed): starting this training afresh"
        )
        shutil.rmtree(ckpt)
    elif state_path.is_file() and not (ckpt / runfiles.LAST_WEIGHTS).is_file():
        print(f"The checkpoint in {ckpt} is of an older format: starting this training afresh")
        shutil.rmtree(ckpt)
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        _restore_checkpoint(model, ckpt)
        if history_path.is_file():  # keep only rows the checkpoint vouches for
            history = results.read_csv(history_path)  # a damaged file is named, not a traceback
            rows = history[history["epoch"] <= state["epoch"]].to_dict("records")
        if state["epoch"]:
            print(f"Continuing from the checkpoint of epoch {state['epoch']} in {ckpt}")
    start = state["epoch"]
    if hasattr(train_ds, "set_epoch"):  # feed epoch ``start`` as an uninterrupted run would
        train_ds.set_epoch(start)
    if start < total and not state.get("stopped_early"):
        cb = _Checkpointer(
            ckpt,
            history_path,
            rows,
            state,
            cfg,
            total,
            monitor if val_ds is not None else "loss",
            progress_total=progress_total,
        )
        t0 = time.perf_counter()
        _build_before_tracing(model, train_ds)
        model.fit(
            train_ds,
            validation_data=val_ds,
            initial_epoch=start,
            epochs=total,
            callbacks=[cb],
            shuffle=False,  # the pipeline shuffles
            verbose=verbose,
        )
        wall = time.perf_counter() - t0
        inside = sum(r["seconds"] for r in rows if r["epoch"] > start)
        # Time outside the epochs: graph building, checkpoint writes and any stall between epochs.
        print(
            f"Trained epochs {start + 1}-{state['epoch']} in {wall:.0f} s "
            f"({inside:.0f} s inside epochs, {wall - inside:.0f} s around them)"
        )
    history = pd.DataFrame(rows)
    averaged = state.get("averaged") if averaged_epochs(cfg, total) else None
    if averaged and state.get("average_file") and (ckpt / state["average_file"]).is_file():
        _load_weights(model, ckpt / state["average_file"])
        t0 = time.perf_counter()
        n = reestimate_batch_norm(model, train_ds, cfg.batch_size)
        took = time.perf_counter() - t0
        print(
            f"The model is the average of the weights of epochs {averaged[0]}-{averaged[1]}"
            + (
                f", batch-norm statistics re-estimated on the training images ({took:.0f} s)"
                if n
                else ""
            )
        )
        history.attrs["averaged_epochs"] = list(averaged)
        history.attrs["average_seconds"] = took
    elif restore_best and (ckpt / runfiles.BEST_WEIGHTS).is_file():
        _load_weights(model, ckpt / runfiles.BEST_WEIGHTS)
    history.attrs["best_epoch"] = state.get("best_epoch")
    history.attrs["stopped_early"] = state.get("stopped_early", False)
    return history


_SIGNED_SINCE = {"flips": "both"}  # a setting added after checkpoints existed: its value before


def _signature(model: keras.Model, cfg) -> str:
    """What a checkpoint must match to be continued: everything but the epoch count.

    A larger total of epochs continues a training (staged pretraining relies on it); any other
    change (data, split, size, width, batch, learning rate, schedule, seed, architecture) starts
    afresh rather than mixing two trainings.
    """
    keys = (
        "data_dir",
        "split",
        "max_samples",
        "image_size",
        "width",
        "batch_size",
        "learning_rate",
        "lr_schedule",
        "warmup_epochs",
        "seed",
        "patience",
        "bn_momentum",
        "clipnorm",
        "average_epochs",
    )
    d = cfg.to_dict()
    signed = {k: d[k] for k in keys}
    # Settings added later are signed only where they differ from what older checkpoints were
    # trained with, so that those still resume.
    signed.update({k: d[k] for k, before in _SIGNED_SINCE.items() if d[k] != before})
    text = json.dumps(signed, sort_keys=True) + f"|{model.name}|{model.count_params()}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def train_seconds(history: pd.DataFrame) -> float:
    """Training time summed over epochs (resumed runs included), with the batch-norm pass of an
    averaged model."""
    if "seconds" not in history:
        return float("nan")
    return float(history["seconds"].sum()) + float(history.attrs.get("average_seconds", 0.0))
