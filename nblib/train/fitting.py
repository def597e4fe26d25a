"""Compile and train with checkpoints that survive a kill.

``fit`` trains up to a *total* number of epochs. After every epoch it writes, atomically, the
history row (``history.csv``), the weights and the optimizer's state, and the best weights so
far. Started again (the notebook re-run after a crash, or ``run_all.sh`` after an interruption)
it continues from the last finished epoch with the same optimizer state, so an interrupted run
ends where an uninterrupted one ends. Calling it again with a larger total continues training:
staged autoencoder pretraining relies on this.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from nblib.core import config, results, runfiles, runtime, timing
from nblib.train import averaging, checkpoints
from nblib.train import metrics as nb_metrics


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
        jit_compile=True if runtime.backend() == "jax" else runtime.switch(cfg.xla),
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
        self.average = averaging.Average(ckpt, state, total, averaging.averaged_epochs(cfg, total))

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
            checkpoints.save_weights(self.model, self.ckpt / runfiles.BEST_WEIGHTS)
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
        checkpoints.save_checkpoint(self.model, self.ckpt, self.state)
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
            + f"; {row['seconds']:.0f} s/epoch, ETA {timing.duration(left)}",
            flush=True,
        )


def _build_before_tracing(model: keras.Model, train_ds) -> None:
    """Create the optimizer's and the metrics' variables before the first step is traced.

    Keras on TensorFlow without a distribution strategy creates them inside the first traced
    step, and TensorFlow then traces that step a second time. Building them first from the
    feed's element spec saves that second trace (``benchmarks/cpu.md``) and changes no number.
    """
    if runtime.backend() != "tensorflow" or model.optimizer is None or model.optimizer.built:
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
    where = config.shown(ckpt, cfg.output_dir)  # as the page shows it: inside the run folder
    state, rows = _resume(model, ckpt, history_path, checkpoints.signature(model, cfg), where)
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
        _train(model, train_ds, val_ds, cb, start, total, verbose)
    history = pd.DataFrame(rows)
    _final_weights(model, history, state, ckpt, cfg, total, train_ds, restore_best)
    history.attrs["best_epoch"] = state.get("best_epoch")
    history.attrs["stopped_early"] = state.get("stopped_early", False)
    return history


def _resume(model: keras.Model, ckpt: Path, history_path: Path, signature: str, where: str):
    """The training state and history rows to continue from: the checkpoint's when it was made
    with these settings (its weights and optimizer state restored into ``model``), else a fresh
    start (a checkpoint of other settings, or without its weights, is deleted, saying so)."""
    state_path = ckpt / runfiles.CHECKPOINT_STATE
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
            f"The checkpoint in {where} was made with other settings (data, size, width, batch, rate or "
            "seed): starting this training afresh"
        )
        shutil.rmtree(ckpt)
    elif state_path.is_file() and not (ckpt / runfiles.LAST_WEIGHTS).is_file():
        print(f"The checkpoint in {where} lacks its weights file: starting this training afresh")
        shutil.rmtree(ckpt)
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        checkpoints.restore_checkpoint(model, ckpt)
        if history_path.is_file():  # keep only rows the checkpoint vouches for
            history = results.read_csv(history_path)  # a damaged file is named, not a traceback
            rows = history[history["epoch"] <= state["epoch"]].to_dict("records")
        if state["epoch"]:
            print(f"Continuing from the checkpoint of epoch {state['epoch']} in {where}")
    return state, rows


def _train(model, train_ds, val_ds, cb: _Checkpointer, start: int, total: int, verbose: int):
    """Keras' fit from epoch ``start`` to ``total``, the checkpointer writing every epoch; then
    how long it took inside and around the epochs."""
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
    inside = sum(r["seconds"] for r in cb.rows if r["epoch"] > start)
    # Time outside the epochs: graph building, checkpoint writes and any stall between epochs.
    print(
        f"Trained epochs {start + 1}-{cb.state['epoch']} in {wall:.0f} s "
        f"({inside:.0f} s inside epochs, {wall - inside:.0f} s around them)"
    )


def _final_weights(model, history, state, ckpt, cfg, total, train_ds, restore_best) -> None:
    """Load the weights the model ends with: the average of its last epochs (batch-norm
    statistics re-estimated) when it averages, else the best epoch's when ``restore_best``."""
    averaged = state.get("averaged") if averaging.averaged_epochs(cfg, total) else None
    if averaged and state.get("average_file") and (ckpt / state["average_file"]).is_file():
        checkpoints.load_weights(model, ckpt / state["average_file"])
        t0 = time.perf_counter()
        n = averaging.reestimate_batch_norm(model, train_ds, cfg.batch_size)
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
        checkpoints.load_weights(model, ckpt / runfiles.BEST_WEIGHTS)


def train_seconds(history: pd.DataFrame) -> float:
    """Training time summed over epochs (resumed runs included), with the batch-norm pass of an
    averaged model."""
    if "seconds" not in history:
        return float("nan")
    return float(history["seconds"].sum()) + float(history.attrs.get("average_seconds", 0.0))
