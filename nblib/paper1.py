"""Paper 1's experiment, shared by notebooks 03 (ResNet-50) and 04 (Inception-V4).

Official split, flips in training, MSLE loss, Adam; per-epoch loss, RMSE, MAPE and R^2 on training
and validation data; test metrics of Table I beside the mean predictor and the paper's numbers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd

from nblib import data, evaluation, pipeline, plots, reference, results, training
from nblib.models import registry
from nblib.models.layers import count_params

LABELS = {"resnet50": "ResNet-50 (GELU)", "inception_v4": "Inception-V4"}


@dataclasses.dataclass
class Result:
    model: Any
    table: pd.DataFrame  # [id, path, boneage, male, split]
    history: pd.DataFrame
    test: dict
    mean: dict
    predictions: pd.DataFrame
    params_count: int
    figures: dict


def table1(key: str, test: dict, mean: dict) -> pd.DataFrame:
    """Table I for one model: the paper's values (reference), ours, and the mean predictor's."""
    ref = reference.PAPER1_TABLE1[key]
    rows = []
    for k, label in (
        ("loss", "test loss (MSLE)"),
        ("rmse", "test RMSE (months)"),
        ("mape", "test MAPE (%)"),
        ("r2", "test R² (%)"),
        ("mae", "test MAE (months)"),
    ):
        scale = 100.0 if k == "r2" else 1.0
        rows.append(
            {
                "metric": label,
                "paper (reference)": ref.get(k),
                "ours": test[k] * scale,
                "mean predictor (ours)": mean[k] * scale,
            }
        )
    return pd.DataFrame(rows)


def run(cfg, key: str) -> Result:
    """Train and evaluate ``key`` (``resnet50`` or ``inception_v4``) as configured; write every result."""
    strategy = training.setup(cfg)
    parts = data.split_tables(cfg)
    df = pd.concat(parts.values(), ignore_index=True)
    ds = {
        s: pipeline.make_dataset(
            parts[s], cfg.image_size, cfg.batch_size, training=(s == "train"), seed=cfg.seed
        )
        for s in data.SPLITS
    }
    with strategy.scope():
        model = registry.build(
            key,
            image_size=cfg.image_size,
            width=cfg.width,
            output_bias=float(parts["train"]["boneage"].mean()),
        )
        training.compile_model(model, cfg, loss="msle")
    n_params = count_params(model)
    print(
        f"{LABELS[key]}: {n_params:,} parameters at {cfg.image_size} px, width {cfg.width}; "
        f"{len(parts['train'])} training / {len(parts['validation'])} validation / {len(parts['test'])} test images"
    )
    history = training.fit(model, ds["train"], ds["validation"], cfg)
    pred, test = evaluation.evaluate(model, parts["test"], ds["test"], loss="msle")
    mean = evaluation.mean_predictor(parts["train"], parts["test"], loss="msle")
    results.write_csv(cfg.run_dir / "predictions.csv", pred)
    training.save_model(model, cfg.run_dir / "model.keras")
    figs = {
        "training_curves": plots.training_curves(
            history, title=f"{LABELS[key]}: training and validation"
        ),
        "pred_vs_true": plots.pred_vs_true(pred, title=f"{LABELS[key]} on the test set"),
        "error_by_group": plots.error_by_group(
            evaluation.by_group(pred), title=f"{LABELS[key]}: test MAE by group"
        ),
    }
    for name, fig in figs.items():
        results.save_figure(fig, cfg.run_dir / f"{name}.png")
    results.write_csv(cfg.run_dir / "table1.csv", table1(key, test, mean))
    results.write_csv(cfg.run_dir / "error_by_group.csv", evaluation.by_group(pred))
    results.write_metrics(
        cfg,
        {
            "test": test,
            "mean_predictor": mean,
            "epochs_run": len(history),
            "best_epoch": history.attrs.get("best_epoch"),
            "stopped_early": history.attrs.get("stopped_early"),
            "train_seconds": training.train_seconds(history),
            "params_count": n_params,
            "n_train": len(parts["train"]),
            "n_val": len(parts["validation"]),
            "n_test": len(parts["test"]),
        },
        model=key,
    )
    return Result(model, df, history, test, mean, pred, n_params, figs)
