"""Paper 2's experiments: autoencoder pretraining (notebook 05) and AE-BoNet with its ablation and
baselines (notebook 06). Paper 2's random 10,088/2,323/200 split protocol throughout."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import pandas as pd

from nblib import data, evaluation, pipeline, plots, pretraining, reference, results, training
from nblib.models import autoencoder, baselines, registry
from nblib.models.layers import count_params

AE_NOTEBOOK = "05_autoencoder_pretraining"
ENCODER_FILE = "encoder.weights.h5"
BONET_PANELS = (("mae", "MAE (months)"), ("loss", "Loss (MSE)"))


def encoder_path(cfg) -> Path:
    return Path(cfg.output_dir) / AE_NOTEBOOK / ENCODER_FILE


@dataclasses.dataclass
class PretrainResult:
    model: keras.Model
    stages: pd.DataFrame
    history: pd.DataFrame
    params_count: int
    figures: dict


def table2(stages: pd.DataFrame) -> pd.DataFrame:
    """Table 2 side by side: the paper's stages (reference) and ours."""
    rows = []
    for r in stages.to_dict("records"):
        ref = (
            reference.PAPER2_TABLE2[r["stage"] - 1]
            if r["stage"] <= len(reference.PAPER2_TABLE2)
            else {}
        )
        rows.append(
            {
                "stage": r["stage"],
                "paper epochs (reference)": ref.get("epochs"),
                "paper MSE (reference)": ref.get("loss"),
                "paper accuracy (reference)": ref.get("accuracy"),
                "our epochs": r["epochs"],
                "our MSE": r["loss"],
                "our accuracy": r["accuracy"],
                "our val MSE": r["val_loss"],
                "our val PSNR (dB)": r["psnr"],
                "our val SSIM": r["ssim"],
            }
        )
    return pd.DataFrame(rows)


def pretrain(cfg) -> PretrainResult:
    """Notebook 05: staged pretraining on the training split's images; writes the encoder weights."""
    strategy = training.setup(cfg)
    parts = data.split_tables(cfg)
    ds = {
        s: pipeline.make_dataset(
            parts[s],
            cfg.image_size,
            cfg.batch_size,
            training=(s == "train"),
            target="image",
            seed=cfg.seed,
        )
        for s in ("train", "validation")
    }
    with strategy.scope():
        ae = registry.build("autoencoder", image_size=cfg.image_size, width=cfg.width)
        encoder = autoencoder.encoder_of(ae)
        pretraining.compile_autoencoder(ae, cfg)
    n_params = count_params(ae)
    print(
        f"Autoencoder: {n_params:,} parameters ({count_params(encoder):,} in the encoder) at {cfg.image_size} px, "
        f"width {cfg.width}; stages {list(cfg.ae_stages)}; {len(parts['train'])} training images"
    )
    stages, history = pretraining.pretrain(cfg, ae, ds["train"], ds["validation"])
    with results.atomic_path(cfg.run_dir / ENCODER_FILE) as tmp:
        encoder.save_weights(tmp)
    training.save_model(ae, cfg.run_dir / "autoencoder.keras")
    sample = pipeline.load_images(parts["validation"], cfg.image_size)[:8]
    recon = ae.predict(sample[..., None], verbose=0)[..., 0]
    figs = {
        "reconstructions": plots.image_grid(
            list(sample / 255.0) + list(recon),
            cols=8,
            titles=["original"] * len(sample) + ["reconstructed"] * len(recon),
            title="Validation images (top) and their reconstructions (bottom)",
        ),
        "training_curves": plots.training_curves(
            history,
            panels=(
                ("loss", "MSE"),
                ("accuracy", "Keras-2 accuracy"),
                ("psnr", "PSNR (dB)"),
                ("ssim", "SSIM"),
            ),
            title="Autoencoder pretraining",
        ),
    }
    for name, fig in figs.items():
        results.save_figure(fig, cfg.run_dir / f"{name}.png")
    results.write_csv(cfg.run_dir / "table2.csv", table2(stages))
    results.write_metrics(
        cfg,
        {
            "stages": stages.to_dict("records"),
            "train_seconds": training.train_seconds(history),
            "epochs_run": int(history["epoch"].max()),
            "params_count": n_params,
            "n_train": len(parts["train"]),
            "n_val": len(parts["validation"]),
        },
        encoder_weights=str(cfg.run_dir / ENCODER_FILE),
    )
    return PretrainResult(ae, stages, history, n_params, figs)


def train_regressor(
    cfg,
    key: str,
    model: keras.Model,
    parts: dict,
    image_size: int,
    epochs: int,
    parts_max: int = 0,
) -> dict:
    """Paper 2's regression training (Adam, MSE loss, MAE metric) of one model, tagged ``key``."""
    if parts_max:
        parts = {
            s: data.subset(
                p.assign(split=s),
                max(1, parts_max * len(p) // sum(map(len, parts.values()))),
                cfg.seed,
            ).reset_index(drop=True)
            for s, p in parts.items()
        }
    ds = {
        s: pipeline.make_dataset(
            parts[s],
            image_size,
            cfg.batch_size,
            training=(s == "train"),
            seed=cfg.seed,
        )
        for s in data.SPLITS
    }
    training.compile_model(
        model, cfg, loss="mse", metrics=[keras.metrics.MeanAbsoluteError(name="mae")]
    )
    history = training.fit(model, ds["train"], ds["validation"], cfg, epochs=epochs, tag=key)
    pred, test = evaluation.evaluate(model, parts["test"], ds["test"], loss="mse")
    results.write_csv(cfg.run_dir / f"predictions_{key}.csv", pred)
    return {
        "predictions": pred,
        "test": test,
        "epochs_run": len(history),
        "train_seconds": training.train_seconds(history),
        "params_count": count_params(model),
        "image_size": image_size,
        "n_train": len(parts["train"]),
        "history": history,
    }


@dataclasses.dataclass
class BonetResult:
    models: dict  # key -> metrics dict (with "history")
    mean: dict
    predictions: pd.DataFrame
    figures: dict


def table5(models: dict, mean: dict) -> pd.DataFrame:
    """Tables 4-5 side by side: paper MAE/MSE at 256 and 450 px (reference) beside ours."""
    rows = []
    for key, m in models.items():
        backbone = "ae_bonet" if key in ("ae_bonet", "random_init") else key.rsplit("_", 1)[0]
        ref = reference.PAPER2_TABLE5.get(backbone, {}) if key != "random_init" else {}
        rows.append(
            {
                "model": m["label"],
                "init": m["init"],
                "image size": m["image_size"],
                "paper MAE @256 (reference)": ref.get(256, (None, None))[0],
                "paper MSE @256 (reference)": ref.get(256, (None, None))[1],
                "paper MAE @450 (reference)": ref.get(450, (None, None))[0],
                "paper MSE @450 (reference)": ref.get(450, (None, None))[1],
                "our MAE": m["test"]["mae"],
                "our MSE": m["test"]["mse"],
                "epochs": m["epochs_run"],
                "train seconds": m["train_seconds"],
            }
        )
    rows.append(
        {
            "model": "predicting the training mean",
            "init": "-",
            "our MAE": mean["mae"],
            "our MSE": mean["mse"],
        }
    )
    return pd.DataFrame(rows)


def run_bonet(cfg, with_ablation: bool = True, with_baselines: bool = True) -> BonetResult:
    """Notebook 06: AE-BoNet from the pretrained encoder, its random-init ablation, and the baselines."""
    strategy = training.setup(cfg)
    parts = data.split_tables(cfg)
    bias = float(parts["train"]["boneage"].mean())
    models: dict[str, dict] = {}
    with strategy.scope():
        model = registry.build(
            "ae_bonet",
            image_size=cfg.image_size,
            width=cfg.width,
            weights=encoder_path(cfg),
            output_bias=bias,
        )
    models["ae_bonet"] = {
        "label": "AE-BoNet",
        "init": "autoencoder",
        **train_regressor(cfg, "ae_bonet", model, parts, cfg.image_size, cfg.epochs),
    }
    training.save_model(model, cfg.run_dir / "model.keras")
    if with_ablation:
        with strategy.scope():
            model = registry.build(
                "ae_bonet", image_size=cfg.image_size, width=cfg.width, output_bias=bias
            )
        models["random_init"] = {
            "label": "AE-BoNet, random init",
            "init": "random",
            **train_regressor(cfg, "random_init", model, parts, cfg.image_size, cfg.epochs),
        }
    if with_baselines:
        weights = None if cfg.baseline_weights == "none" else cfg.baseline_weights
        for size in cfg.baseline_sizes:
            for name in cfg.baselines:
                with strategy.scope():
                    model = registry.build(
                        name,
                        image_size=size,
                        width=cfg.baseline_width,
                        weights=weights,
                        output_bias=bias,
                    )
                key = f"{name}_{size}"
                label = baselines.BACKBONES[name][0] + (
                    f" (alpha {cfg.baseline_width})" if name == "mobilenet" else ""
                )
                models[key] = {
                    "label": label,
                    "init": weights or "random",
                    **train_regressor(
                        cfg,
                        key,
                        model,
                        parts,
                        size,
                        cfg.baseline_epochs,
                        cfg.baseline_max_samples,
                    ),
                }
    mean = evaluation.mean_predictor(parts["train"], parts["test"], loss="mse")
    pred = models["ae_bonet"]["predictions"]
    results.write_csv(cfg.run_dir / "predictions.csv", pred)
    results.write_csv(cfg.run_dir / "history.csv", models["ae_bonet"]["history"])
    figs = {
        "fig3_curves": plots.training_curves(
            models["ae_bonet"]["history"],
            panels=BONET_PANELS,
            title="AE-BoNet: training and validation (paper 2, Fig. 3)",
        ),
        "fig4_pred_vs_true": plots.pred_vs_true(
            pred, title="AE-BoNet on the test set (paper 2, Fig. 4)"
        ),
    }
    if "random_init" in models:
        figs["ablation_curves"] = plots.training_curves(
            models["random_init"]["history"],
            panels=BONET_PANELS,
            title="AE-BoNet from random initialisation",
        )
    for name, fig in figs.items():
        results.save_figure(fig, cfg.run_dir / f"{name}.png")
    results.write_csv(cfg.run_dir / "table5.csv", table5(models, mean))
    results.write_metrics(
        cfg,
        {
            "models": {
                k: {kk: vv for kk, vv in v.items() if kk not in ("history", "predictions")}
                for k, v in models.items()
            },
            "mean_predictor": mean,
        },
        encoder_weights=str(encoder_path(cfg)),
    )
    return BonetResult(models, mean, pred, figs)
