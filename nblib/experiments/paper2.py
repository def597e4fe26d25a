"""Paper 2's experiments as steps: autoencoder pretraining (notebook 05) and AE-BoNet with its
ablation and baselines (notebook 06). Paper 2's random 10,088/2,323/200 split protocol throughout.

The notebooks call one step per cell (setup, split, inputs, build, fit, evaluate, save, figures);
:func:`pretrain` and :func:`run_bonet` compose the same steps, and :func:`train_regressor` runs
them for each model of the ablation and the baselines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from nblib.core import provenance, results, runfiles, runtime
from nblib.data import loading, pipeline, splitting, test200
from nblib.models import autoencoder, baselines, registry
from nblib.models.layers import count_params
from nblib.report import plots, tables
from nblib.train import checkpoints, evaluation, fitting, pretraining

ENCODER_FILE = runfiles.ENCODER_WEIGHTS
BONET_PANELS = (("mae", "MAE (months)"), ("loss", "Loss (MSE)"))
AE_PANELS = (
    ("loss", "MSE"),
    ("accuracy", "Keras-2 accuracy"),
    ("psnr", "PSNR (dB)"),
    ("ssim", "SSIM"),
)
LOSS = "mse"


def encoder_path(cfg) -> Path:
    """The pretrained encoder's weights, written by notebook 05 and read by notebook 06."""
    return runfiles.encoder_weights(cfg.output_dir)


# --- notebook 05: staged autoencoder pretraining -------------------------------------------------


@dataclasses.dataclass
class PretrainResult:
    model: keras.Model
    stages: pd.DataFrame
    history: pd.DataFrame
    saved: dict  # what save_pretraining() wrote: metrics, table2
    figures: dict


def build_autoencoder(cfg, strategy) -> tuple[keras.Model, keras.Model]:
    """The autoencoder and its encoder under ``strategy``; the autoencoder compiled (Table 1)."""
    with strategy.scope():
        ae = registry.build("autoencoder", image_size=cfg.image_size, width=cfg.width)
        encoder = autoencoder.encoder_of(ae)
        pretraining.compile_autoencoder(ae, cfg)
    print(
        f"Autoencoder: {count_params(ae):,} parameters ({count_params(encoder):,} in the encoder) "
        f"at {cfg.image_size} px, width {cfg.width}; stages {list(cfg.ae_stages)}"
    )
    return ae, encoder


def reconstruct(cfg, ae: keras.Model, parts: dict, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """``n`` validation images (uint8) and their reconstructions (in [0, 1])."""
    sample = pipeline.load_images(parts["validation"], cfg.image_size)[:n]
    return sample, ae.predict(sample[..., None], verbose=0)[..., 0]


def save_pretraining(cfg, ae, encoder, stages: pd.DataFrame, history, parts: dict) -> dict:
    """Write the encoder's weights (for notebook 06), the autoencoder, Table 2 and
    ``metrics.json``; return ``metrics`` and ``table2``."""
    with results.atomic_path(cfg.run_dir / ENCODER_FILE) as tmp:
        encoder.save_weights(tmp)
    checkpoints.save_model(ae, cfg.run_dir / runfiles.AUTOENCODER)
    m = {
        "stages": stages.to_dict("records"),
        "train_seconds": fitting.train_seconds(history),
        "epochs_run": int(history["epoch"].max()),
        "params_count": count_params(ae),
        "n_train": len(parts["train"]),
        "n_val": len(parts["validation"]),
    }
    out = {"metrics": m, "table2": tables.table2(m["stages"])}
    results.write_csv(cfg.run_dir / runfiles.table("table2"), out["table2"])
    provenance.write_metrics(cfg, m, encoder_weights=str(cfg.run_dir / ENCODER_FILE))
    return out


def pretraining_figures(history: pd.DataFrame, sample: np.ndarray, recon: np.ndarray) -> dict:
    """Validation images above their reconstructions; the curves of every metric."""
    return {
        "reconstructions": plots.image_grid(
            list(sample / 255.0) + list(recon),
            cols=8,
            titles=["original"] * len(sample) + ["reconstructed"] * len(recon),
            title="Validation images (top) and their reconstructions (bottom)",
        ),
        "training_curves": plots.training_curves(
            history, panels=AE_PANELS, title="Autoencoder pretraining"
        ),
    }


def pretrain(cfg) -> PretrainResult:
    """Notebook 05's steps: staged pretraining on the training split; writes the encoder weights."""
    strategy = runtime.setup(cfg)
    split = loading.split_for(cfg)
    loading.save_split(cfg, split)
    ds = pipeline.datasets(
        split.parts,
        cfg.image_size,
        cfg.batch_size,
        cfg.seed,
        target="image",
        splits=("train", "validation"),
    )
    ae, encoder = build_autoencoder(cfg, strategy)
    stages, history = pretraining.pretrain(cfg, ae, ds["train"], ds["validation"])
    sample, recon = reconstruct(cfg, ae, split.parts)
    saved = save_pretraining(cfg, ae, encoder, stages, history, split.parts)
    figs = pretraining_figures(history, sample, recon)
    results.save_figures(figs, cfg.run_dir)
    return PretrainResult(ae, stages, history, saved, figs)


# --- notebook 06: AE-BoNet, its random-init ablation, the baselines ------------------------------


@dataclasses.dataclass
class Regressor:
    """One trained regressor of notebook 06: its row of Table 5, its curves and predictions."""

    label: str
    init: str  # autoencoder, random, or the baselines' weights
    image_size: int
    n_train: int
    params_count: int
    history: pd.DataFrame
    scores: evaluation.Scores
    benchmark: dict | None = None  # on the official test table, when not its own test set

    def metrics(self) -> dict:
        """Its entry of ``metrics.models`` in ``metrics.json``; ``intervals`` beside ``test``
        holds the bootstrap intervals of its test metrics."""
        return {
            "label": self.label,
            "init": self.init,
            "test": self.scores.test,
            "intervals": self.scores.intervals,
            "epochs_run": len(self.history),
            "train_seconds": fitting.train_seconds(self.history),
            "params_count": self.params_count,
            "image_size": self.image_size,
            "n_train": self.n_train,
            **({"benchmark": self.benchmark} if self.benchmark else {}),
        }


@dataclasses.dataclass
class BonetResult:
    models: dict[str, Regressor]  # ae_bonet, random_init, <backbone>_<size>
    mean: dict  # the mean predictor's test metrics
    saved: dict  # what save_bonet() wrote: metrics, table4, table5
    figures: dict


def compile_regressor(model: keras.Model, cfg) -> keras.Model:
    """Paper 2's regression training: Adam, MSE loss, MAE metric."""
    return fitting.compile_model(
        model, cfg, loss=LOSS, metrics=[keras.metrics.MeanAbsoluteError(name="mae")]
    )


def build_bonet(cfg, parts: dict, strategy, pretrained: bool = True) -> keras.Model:
    """AE-BoNet from notebook 05's encoder (or, ``pretrained=False``, from random
    initialisation: the ablation), compiled; its output bias starts at the training mean."""
    bias = float(parts["train"]["boneage"].mean())
    with strategy.scope():
        model = registry.build(
            "ae_bonet",
            image_size=cfg.image_size,
            width=cfg.width,
            weights=encoder_path(cfg) if pretrained else None,
            output_bias=bias,
            flips=cfg.flips,
        )
    return compile_regressor(model, cfg)


def build_baseline(cfg, name: str, size: int, parts: dict, strategy) -> keras.Model:
    """A keras.applications backbone under AE-BoNet's head (Table 5), compiled."""
    weights = None if cfg.baseline_weights == "none" else cfg.baseline_weights
    with strategy.scope():
        model = registry.build(
            name,
            image_size=size,
            weights=weights,
            width=cfg.baseline_width,
            output_bias=float(parts["train"]["boneage"].mean()),
            flips=cfg.flips,
        )
    return compile_regressor(model, cfg)


def describe(cfg, key: str) -> tuple[str, str]:
    """(label, init) of model ``key`` in Table 5."""
    if key == "ae_bonet":
        return "AE-BoNet", "autoencoder"
    if key == "random_init":
        return "AE-BoNet, random init", "random"
    name = key.rsplit("_", 1)[0]
    alpha = f" (alpha {cfg.baseline_width})" if name == "mobilenet" else ""
    init = "random" if cfg.baseline_weights == "none" else cfg.baseline_weights
    return baselines.BACKBONES[name][0] + alpha, init


def save_regressor(cfg, key: str, model, history, scores, image_size: int, parts) -> Regressor:
    """Write model ``key``'s predictions (``predictions_<key>.csv``; AE-BoNet's model too) and
    return its record for Table 5."""
    results.write_csv(cfg.run_dir / runfiles.predictions(key), scores.predictions)
    if key == "ae_bonet":
        checkpoints.save_model(model, cfg.run_dir / runfiles.MODEL)
    label, init = describe(cfg, key)
    bench = benchmark(cfg, key, model, image_size, parts)
    return Regressor(
        label, init, image_size, len(parts["train"]), count_params(model), history, scores, bench
    )


def benchmark(cfg, key: str, model, image_size: int, parts: dict) -> dict | None:
    """Model ``key`` scored on the data folder's official test table as well, when its own test
    set is not that table (paper 2's random protocol splits the training table alone): its
    predictions go to ``benchmark_predictions_<key>.csv``, its metrics to ``metrics.json``.
    None under the official protocol (its test set is the official one) or without such a
    table."""
    if cfg.split != "random":
        return None
    rows = test200.official_test(loading.resolve_data_dir(cfg))
    if rows is None:
        return None
    train_mean = float(parts["train"]["boneage"].mean())
    out = evaluation.score_rows(model, rows, image_size, cfg.batch_size, train_mean, LOSS)
    results.write_csv(cfg.run_dir / runfiles.benchmark_predictions(key), out.pop("predictions"))
    return out


def _fewer(parts: dict, max_samples: int, seed: int) -> dict:
    """At most ``max_samples`` images in all, each split cut in proportion (seeded)."""
    total = sum(map(len, parts.values()))
    return {
        s: splitting.subset(
            p.assign(split=s), max(1, max_samples * len(p) // total), seed
        ).reset_index(drop=True)
        for s, p in parts.items()
    }


def train_regressor(
    cfg,
    key: str,
    build: Callable[[], keras.Model],
    parts: dict,
    image_size: int,
    epochs: int,
    max_samples: int = 0,
) -> Regressor:
    """Notebook 06's steps for one model, tagged ``key``: inputs, build (``build()`` returns it
    compiled), fit, evaluate, save."""
    if max_samples:
        parts = _fewer(parts, max_samples, cfg.seed)
    ds = pipeline.datasets(parts, image_size, cfg.batch_size, cfg.seed)
    model = build()
    history = fitting.fit(model, ds["train"], ds["validation"], cfg, epochs=epochs, tag=key)
    scores = evaluation.score(model, parts, ds, loss=LOSS)
    return save_regressor(cfg, key, model, history, scores, image_size, parts)


def ablation(cfg, parts: dict, strategy) -> dict[str, Regressor]:
    """AE-BoNet from random initialisation, trained as AE-BoNet is: what pretraining buys."""
    return {
        "random_init": train_regressor(
            cfg,
            "random_init",
            lambda: build_bonet(cfg, parts, strategy, pretrained=False),
            parts,
            cfg.image_size,
            cfg.epochs,
        )
    }


def baseline_models(cfg, parts: dict, strategy) -> dict[str, Regressor]:
    """Table 5's baselines: every backbone of ``cfg.baselines`` at every ``cfg.baseline_sizes``."""
    out = {}
    for size in cfg.baseline_sizes:
        for name in cfg.baselines:
            out[f"{name}_{size}"] = train_regressor(
                cfg,
                f"{name}_{size}",
                lambda name=name, size=size: build_baseline(cfg, name, size, parts, strategy),
                parts,
                size,
                cfg.baseline_epochs,
                cfg.baseline_max_samples,
            )
    return out


def save_bonet(cfg, models: dict[str, Regressor]) -> dict:
    """Write Tables 4-5 and ``metrics.json`` (every model beside the mean predictor); return
    ``metrics``, ``table4`` and ``table5``."""
    m = {
        "models": {k: r.metrics() for k, r in models.items()},
        "mean_predictor": models["ae_bonet"].scores.mean,
    }
    out = {
        "metrics": m,
        "table4": tables.table4(m["models"]),
        "table5": tables.table5(m["models"], m["mean_predictor"]),
    }
    for name in ("table4", "table5"):
        results.write_csv(cfg.run_dir / runfiles.table(name), out[name])
    provenance.write_metrics(cfg, m, encoder_weights=str(encoder_path(cfg)))
    return out


def bonet_figures(models: dict[str, Regressor]) -> dict:
    """AE-BoNet's curves (Fig. 3) and predictions (Fig. 4); the ablation's curves."""
    ae = models["ae_bonet"]
    figs = {
        "fig3_curves": plots.training_curves(
            ae.history,
            panels=BONET_PANELS,
            title="AE-BoNet: training and validation (paper 2, Fig. 3)",
        ),
        "fig4_pred_vs_true": plots.pred_vs_true(
            ae.scores.predictions, title="AE-BoNet on the test set (paper 2, Fig. 4)"
        ),
    }
    if "random_init" in models:
        figs["ablation_curves"] = plots.training_curves(
            models["random_init"].history,
            panels=BONET_PANELS,
            title="AE-BoNet from random initialisation",
        )
    return figs


def run_bonet(cfg, with_ablation: bool = True, with_baselines: bool = True) -> BonetResult:
    """Notebook 06's steps: AE-BoNet from the pretrained encoder, its random-init ablation, and
    the baselines."""
    strategy = runtime.setup(cfg)
    split = loading.split_for(cfg)
    loading.save_split(cfg, split)
    parts = split.parts
    models = {
        "ae_bonet": train_regressor(
            cfg,
            "ae_bonet",
            lambda: build_bonet(cfg, parts, strategy),
            parts,
            cfg.image_size,
            cfg.epochs,
        )
    }
    if with_ablation:
        models.update(ablation(cfg, parts, strategy))
    if with_baselines:
        models.update(baseline_models(cfg, parts, strategy))
    saved = save_bonet(cfg, models)
    figs = bonet_figures(models)
    results.save_figures(figs, cfg.run_dir)
    return BonetResult(models, models["ae_bonet"].scores.mean, saved, figs)
