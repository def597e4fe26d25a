"""Paper 1's experiment, shared by notebooks 03 (ResNet-50) and 04 (Inception-V4), as steps.

Official split, flips in training, MSLE loss, Adam; per-epoch loss, RMSE, MAPE and R^2 on training
and validation data; test metrics of Table I beside the mean predictor and the paper's numbers.

The notebooks call one step per cell: ``runtime.setup``, ``loading.split_for`` and
``loading.save_split``, ``pipeline.datasets``, :func:`build`, ``fitting.fit``, ``evaluation.score``,
:func:`save`, then :func:`figures`; :func:`run` composes the same steps in one call.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import pandas as pd

from nblib.core import provenance, results, runfiles, runtime
from nblib.data import loading, pipeline, splitting
from nblib.models import registry
from nblib.models.layers import count_params
from nblib.report import plots, tables
from nblib.train import checkpoints, evaluation, fitting

LABELS = tables.PAPER1_LABELS
LOSS = "msle"


@dataclasses.dataclass
class Result:
    model: keras.Model
    split: splitting.Split
    history: pd.DataFrame
    scores: evaluation.Scores
    saved: dict[str, Any]  # what save() wrote: metrics, table1, error_by_group
    figures: dict


def build(cfg, key: str, parts: dict[str, pd.DataFrame], strategy) -> keras.Model:
    """Paper 1's model ``key`` (``resnet50`` or ``inception_v4``) under ``strategy``, compiled
    (MSLE, Adam); its output bias starts at the training mean."""
    with strategy.scope():
        model = registry.build(
            key,
            image_size=cfg.image_size,
            width=cfg.width,
            output_bias=float(parts["train"]["boneage"].mean()),
            flips=cfg.flips,
        )
        fitting.compile_model(model, cfg, loss=LOSS)
    print(
        f"{LABELS[key]}: {count_params(model):,} parameters at {cfg.image_size} px, width "
        f"{cfg.width}; {len(parts['train'])} training / {len(parts['validation'])} validation / "
        f"{len(parts['test'])} test images"
    )
    return model


def metrics(model, history: pd.DataFrame, scores: evaluation.Scores, parts: dict) -> dict:
    """The ``metrics`` section of ``metrics.json``: Table I's numbers and how training went;
    ``intervals`` holds the bootstrap intervals of the test metrics (:func:`evaluation.intervals`)."""
    return {
        "test": scores.test,
        "intervals": scores.intervals,
        "mean_predictor": scores.mean,
        "epochs_run": len(history),
        "best_epoch": history.attrs.get("best_epoch"),
        "averaged_epochs": history.attrs.get("averaged_epochs"),  # None: the best epoch's weights
        "stopped_early": history.attrs.get("stopped_early"),
        "train_seconds": fitting.train_seconds(history),
        "params_count": count_params(model),
        "n_train": len(parts["train"]),
        "n_val": len(parts["validation"]),
        "n_test": len(parts["test"]),
    }


def save(cfg, key: str, model, history, scores: evaluation.Scores, parts: dict) -> dict:
    """Write the predictions, the model, Table I, the error by group and ``metrics.json``.

    Returns what was written: ``metrics`` (the dictionary) and the two tables.
    """
    m = metrics(model, history, scores, parts)
    out = {
        "metrics": m,
        "table1": tables.table1(key, m),
        "error_by_group": tables.error_by_group({LABELS[key]: scores.predictions}),
    }
    results.write_csv(cfg.run_dir / runfiles.PREDICTIONS, scores.predictions)
    checkpoints.save_model(model, cfg.run_dir / runfiles.MODEL)
    for name in ("table1", "error_by_group"):
        results.write_csv(cfg.run_dir / runfiles.table(name), out[name])
    provenance.write_metrics(cfg, m, model=key)
    return out


def figures(key: str, history, predictions: pd.DataFrame, groups: pd.DataFrame) -> dict:
    """Training curves (the paper's Figs. 5-6 layout), predicted vs true, error by group."""
    return {
        "training_curves": plots.training_curves(
            history, title=f"{LABELS[key]}: training and validation"
        ),
        "pred_vs_true": plots.pred_vs_true(predictions, title=f"{LABELS[key]} on the test set"),
        "error_by_group": plots.error_by_group(groups, title=f"{LABELS[key]}: test MAE by group"),
    }


def summary(history: pd.DataFrame, scores: evaluation.Scores) -> str:
    """One line: epochs run, the best validation epoch, test RMSE and MAE beside the mean
    predictor's (below it, the model learned age from pixels)."""
    t, m = scores.test, scores.mean
    return (
        f"epochs run: {len(history)}; best validation loss at epoch "
        f"{history['val_loss'].idxmin() + 1}; test RMSE {t['rmse']:.2f} vs {m['rmse']:.2f} for "
        f"the mean predictor; test MAE {t['mae']:.2f} vs {m['mae']:.2f}"
    )


def run(cfg, key: str) -> Result:
    """Train and evaluate ``key`` as configured and write every result: the notebook's steps."""
    strategy = runtime.setup(cfg)
    split = loading.split_for(cfg)
    loading.save_split(cfg, split)
    ds = pipeline.datasets(split.parts, cfg.image_size, cfg.batch_size, cfg.seed)
    model = build(cfg, key, split.parts, strategy)
    history = fitting.fit(model, ds["train"], ds["validation"], cfg)
    scores = evaluation.score(model, split.parts, ds, loss=LOSS)
    saved = save(cfg, key, model, history, scores, split.parts)
    figs = figures(key, history, scores.predictions, saved["error_by_group"])
    results.save_figures(figs, cfg.run_dir)
    return Result(model, split, history, scores, saved, figs)
