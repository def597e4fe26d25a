"""Beyond the papers (notebook 07): the best bone-age regressor the series can train, built up one
ingredient at a time so that each ingredient's contribution is measured, not assumed.

The ingredients are those of the strongest published systems (the RSNA 2017 challenge winners,
Deeplasia): sex as a second input, contrast normalisation, a crop to the hand, augmentation
beyond flips, a standardised target with a robust loss, test-time augmentation and an ensemble.
Every rung of the ladder keeps the previous rungs' ingredients and adds one; all rungs train on
the official split with the same trunk (paper 1's ResNet-50 trunk, global average pooling),
epochs, batch size and learning-rate schedule, so the table's differences are the ingredients'.

Each image is decoded once; every preprocessing variant the ladder needs (and the faithful
models' plain resize, for the ensemble) is made from that one decode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from nblib.core import provenance, results, runfiles
from nblib.data import pipeline, preprocess, splitting
from nblib.models import beyond_net
from nblib.models.layers import count_params
from nblib.report import tables
from nblib.train import calibration, checkpoints, evaluation, fitting, metrics, statistics


@dataclasses.dataclass(frozen=True)
class Recipe:
    """What one rung trains with."""

    sex: bool = False
    contrast: str = "none"  # preprocess.contrast method
    crop: str = "none"  # "none" | "hand"
    augment: bool = False
    robust: bool = False  # standardised target + Huber loss, else MSLE on months (paper 1's)
    long: bool = False  # trained ``long_epochs`` epochs instead of the ladder's ``epochs``

    def preprocessing(self, image_size: int) -> preprocess.Preprocessing:
        return preprocess.Preprocessing(size=image_size, crop=self.crop, contrast=self.contrast)


LADDER = (  # (key, what the rung adds, the change to the previous rung's recipe)
    ("base", "residual trunk, global-pooling head; MSLE, flips", {}),
    ("sex", "+ sex as a second input", {"sex": True}),
    ("contrast", "+ CLAHE contrast normalisation", {"contrast": "clahe"}),
    ("crop", "+ crop to the hand", {"crop": "hand"}),
    ("augment", "+ rotation, scale, shift, brightness, contrast", {"augment": True}),
    ("robust", "+ standardised target, Huber loss", {"robust": True}),
)


LONG = "long"  # the last rung, present when ``long_epochs`` > 0: the whole recipe trained longer


FLIPS = ((False, False), (True, False), (False, True), (True, True))  # test-time augmentation


def ladder(
    only: tuple[str, ...] = (), long_epochs: int = 0, epochs: int = 0
) -> list[tuple[str, str, Recipe]]:
    """The rungs in order, each recipe holding every ingredient added so far; ``only`` keeps the
    named rungs (their recipes still hold every earlier ingredient, and a rung's label names
    the ingredients of the rungs left out before it). With ``long_epochs`` > 0 a last rung,
    ``long``, trains the whole recipe for ``long_epochs`` epochs instead of ``epochs``: on small
    data a from-scratch network is still underfitting after the ladder's epochs, and how much
    more training buys is then an ingredient of its own, measured like the others."""
    steps = list(LADDER)
    if long_epochs:
        steps.append((LONG, f"+ {long_epochs} epochs instead of {epochs}", {"long": True}))
    unknown = sorted(set(only) - {key for key, _, _ in steps})
    if unknown:
        hint = " (long needs long_epochs > 0)" if LONG in unknown else ""
        raise ValueError(
            f"rungs: unknown {', '.join(unknown)}; the rungs are "
            + ", ".join(key for key, _, _ in steps)
            + hint
        )
    out, kw, skipped = [], {}, []
    for key, label, change in steps:
        kw = {**kw, **change}
        if not only or key in only:
            out.append((key, "; ".join([*skipped, label]), Recipe(**kw)))
            skipped = []
        else:
            skipped.append(label)
    return out


def ladder_of(cfg) -> list[tuple[str, str, Recipe]]:
    """The ladder a configuration trains: its ``rungs``, with ``long`` when ``long_epochs`` > 0."""
    return ladder(cfg.rungs, cfg.long_epochs, cfg.epochs)


def prepare_images(
    df: pd.DataFrame, variants: dict[str, preprocess.Preprocessing]
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """uint8 ``[N, S, S]`` arrays for each named preprocessing variant, from one decode per image.

    The hand is found once per image (:func:`nblib.data.preprocess.hand_box`) and shared by every
    cropping variant. Returns the arrays and the crop boxes (one row per image:
    ``id, x0, y0, x1, y1, found, note``, in the decoded image's pixels), which the notebook saves.
    """
    paths = [str(p) for p in df["path"]]
    out = {name: np.empty((len(df), p.size, p.size), np.uint8) for name, p in variants.items()}

    cropping = any(p.crop == "hand" for p in variants.values())

    def one(i: int):
        gray, _ = pipeline.read_gray(paths[i])
        hand = preprocess.hand_box(gray) if cropping else None
        return i, hand, {name: p.apply(gray, hand)[0] for name, p in variants.items()}

    boxes = []
    with ThreadPoolExecutor(max_workers=2) as ex:
        for i, hand, made in ex.map(one, range(len(df))):
            for name, img in made.items():
                out[name][i] = img[..., 0]
            if hand is not None:
                x0, y0, x1, y1 = hand
                boxes.append(
                    {
                        "id": df["id"].iloc[i],
                        "x0": x0,
                        "y0": y0,
                        "x1": x1,
                        "y1": y1,
                        "found": hand.found,
                        "note": hand.note,
                    }
                )
    return out, pd.DataFrame(boxes)


def inputs_of(images: np.ndarray, sex: np.ndarray | None):
    x = images[..., None]
    return x if sex is None else [x, np.asarray(sex, np.float32).reshape(-1, 1)]


def predict_tta(
    model: keras.Model, images: np.ndarray, sex: np.ndarray | None, tta: bool = True
) -> np.ndarray:
    """Predictions ``[V, N]`` of each test-time variant (the four flips, or the image alone)."""
    out = []
    for lr, ud in FLIPS if tta else FLIPS[:1]:
        x = images[:, :, ::-1] if lr else images
        x = x[:, ::-1] if ud else x
        pred = model.predict(inputs_of(np.ascontiguousarray(x), sex), batch_size=64, verbose=0)
        out.append(np.asarray(pred, np.float64).ravel())
    return np.stack(out)


def nonneg_weights(columns: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Ensemble weights: non-negative least squares of ``target`` on the members' predictions
    (``[N, M]``), normalised to sum to 1. Chosen on validation data only."""
    from scipy.optimize import nnls

    w, _ = nnls(np.asarray(columns, np.float64), np.asarray(target, np.float64))
    if w.sum() <= 0:
        return np.full(columns.shape[1], 1.0 / columns.shape[1])
    return w / w.sum()


@dataclasses.dataclass
class Rung:
    key: str
    label: str
    recipe: Recipe
    model: keras.Model
    history: pd.DataFrame
    val: np.ndarray  # [V, N_val] predictions per test-time variant
    test: np.ndarray  # [V, N_test]
    seconds: float
    params_count: int


def train_rung(cfg, key, label, recipe, images, parts, sex, strategy=None) -> Rung:
    """Train one rung (resumably: its checkpoints are ``checkpoints/<key>``); predict val and test.

    The model is built in ``strategy``'s scope (what :func:`nblib.core.runtime.setup` returned), so
    that it trains on every device the run was given."""
    train = parts["train"]
    mean, sd = float(train["boneage"].mean()), float(train["boneage"].std())
    name = "input_" + recipe_variant(recipe)
    ds = {
        s: pipeline.make_dataset(
            parts[s],
            cfg.image_size,
            cfg.batch_size,
            training=(s == "train"),
            seed=cfg.seed,
            images=images[name][s],
            sex=sex[s] if recipe.sex else None,
        )
        for s in ("train", "validation")
    }
    keras.utils.set_random_seed(cfg.seed)  # every rung starts from the same draws
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = beyond_net.build(
            recipe,
            cfg.image_size,
            cfg.width,
            mean=mean,
            sd=sd,
            name=f"beyond_{key}",
            backbone=cfg.backbone,
        )
        loss = beyond_net.standardized_huber(mean, sd) if recipe.robust else "msle"
        fitting.compile_model(model, cfg, loss=loss)
    epochs = cfg.long_epochs if recipe.long else cfg.epochs
    history = fitting.fit(model, ds["train"], ds["validation"], cfg, epochs=epochs, tag=key)
    s_val = sex["validation"] if recipe.sex else None
    s_test = sex["test"] if recipe.sex else None
    return Rung(
        key,
        label,
        recipe,
        model,
        history,
        predict_tta(model, images[name]["validation"], s_val),
        predict_tta(model, images[name]["test"], s_test),
        fitting.train_seconds(history),
        count_params(model),
    )


def recipe_variant(recipe: Recipe) -> str:
    return f"{recipe.crop}-{recipe.contrast}"


def split_images(
    arrays: dict[str, np.ndarray], parts: dict[str, pd.DataFrame], order: pd.DataFrame
):
    """Per-variant arrays of the whole table -> per-variant, per-split arrays (rows as in ``parts``)."""
    pos = {v: i for i, v in enumerate(order["id"])}
    return {
        name: {s: arr[[pos[v] for v in part["id"]]] for s, part in parts.items()}
        for name, arr in arrays.items()
    }


def ablation_row(
    what: str,
    added: str,
    test: dict,
    mean: dict,
    seconds,
    n_params,
    split,
    ci: dict | None = None,
    vs: dict | None = None,
) -> dict:
    """One row of the ablation table. ``ci`` is the model's test intervals
    (:func:`evaluation.intervals`), giving ``mae_low``/``mae_high``; ``vs`` the paired bootstrap
    against the row before (:func:`statistics.paired`), giving ``vs_previous`` (difference of
    MAE with its interval) and ``verdict``, so that the table claims no gain the test set does
    not support. Either may be None (no interval, or nothing before it to compare with)."""
    mae_ci = (ci or {}).get("mae") or {}
    return {
        "model": what,
        "adds": added,
        "split": split,
        "test MAE (months)": test["mae"],
        "mae_low": mae_ci.get("low"),
        "mae_high": mae_ci.get("high"),
        "x mean predictor": test["mae"] / mean["mae"],
        "test RMSE (months)": test["rmse"],
        "training (s)": seconds,
        "parameters": n_params,
        "vs_previous": statistics.fmt(vs["difference"], vs["low"], vs["high"], 2) if vs else None,
        "verdict": vs["verdict"] if vs else None,
    }


def save_rung(cfg, rung: Rung) -> Path:
    """The rung's model and the sidecar that tells ``nblib.apps.predict`` how to prepare its input."""
    path = cfg.run_dir / runfiles.BEYOND_MODELS / f"{rung.key}.keras"
    checkpoints.save_model(rung.model, path)
    preprocess.save_sidecar(
        path,
        rung.recipe.preprocessing(cfg.image_size),
        {
            "inputs": ["image", "sex"] if rung.recipe.sex else ["image"],
            "tta": list(preprocess.TTA),
        },
    )
    return path


FAITHFUL = {  # the series' models that join the ensemble and head the ablation table
    "03_resnet50": ("ResNet-50 (paper 1, faithful)", "resnet50"),
    "04_inception_v4": ("Inception-V4 (paper 1, faithful)", "inception_v4"),
    "06_ae_bonet": ("AE-BoNet (paper 2, faithful)", "ae_bonet"),
}


def faithful_runs(cfg) -> dict[str, dict]:
    """The faithful models this run folder holds: metrics, model path and input size, by notebook."""
    found = {}
    for nb, (label, key) in FAITHFUL.items():
        path = cfg.output_dir / nb / runfiles.METRICS
        if not path.is_file():
            continue
        doc = results.read_json(path)
        m = doc.get("metrics", {})
        if key == "ae_bonet":  # 06 trains several models; their mean predictor is shared
            m = {
                **m.get("models", {}).get("ae_bonet", {}),
                "mean_predictor": m.get("mean_predictor"),
            }
        model = cfg.output_dir / nb / runfiles.MODEL
        found[nb] = {
            "label": label,
            "metrics": m,
            "split": doc.get("params", {}).get("split"),
            "image_size": doc.get("params", {}).get("image_size"),
            "model": model if model.is_file() else None,
        }
    return found


def variants(cfg, faithful: dict[str, dict]) -> dict[str, preprocess.Preprocessing]:
    """Every input variant the ladder and the ensemble need, named ``<crop>-<contrast>[@size]``."""
    out = {
        f"input_{recipe_variant(r)}": r.preprocessing(cfg.image_size) for _, _, r in ladder_of(cfg)
    }
    for nb, run in faithful.items():
        if run["model"] is not None and run["split"] == cfg.split and run["image_size"]:
            out[f"faithful_{nb}"] = preprocess.Preprocessing(size=int(run["image_size"]))
    return out


def inputs(cfg, parts: dict[str, pd.DataFrame], faithful: dict[str, dict]):
    """Decode every image once and make each variant; save the crop boxes. Returns the arrays by
    variant and split, the sex arrays by split, and the crop boxes."""
    table = pd.concat(parts.values(), ignore_index=True)
    arrays, boxes = prepare_images(table, variants(cfg, faithful))
    if len(boxes):
        results.write_csv(cfg.run_dir / runfiles.CROP_BOXES, boxes)
    sex = {s: part["male"].to_numpy(np.float32) for s, part in parts.items()}
    return split_images(arrays, parts, table), sex, boxes


def climb(cfg, key, label, recipe, images, parts, sex, strategy, rungs: list[Rung]) -> Rung:
    """One step of the ladder as the notebook shows it: a progress line, the rung trained
    (:func:`train_rung`), saved with its preprocessing sidecar, and appended to ``rungs``."""
    total = len(ladder_of(cfg))
    print(f"[progress] 07 rung {len(rungs) + 1}/{total}: {key} ({label})", flush=True)
    rung = train_rung(cfg, key, label, recipe, images, parts, sex, strategy)
    save_rung(cfg, rung)
    rungs.append(rung)
    return rung


@dataclasses.dataclass
class Ensemble:
    members: list[str]
    weights: np.ndarray
    val: np.ndarray  # [N_val] weighted predictions
    test: np.ndarray  # [N_test]
    test_sd: np.ndarray  # [N_test] spread over members and test-time variants


def faithful_predictions(images, faithful) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Validation and test predictions (with flips as test-time augmentation) of the faithful
    models trained on this split, loaded from their saved files."""
    out = {}
    for nb, run in faithful.items():
        name = f"faithful_{nb}"
        if name not in images:
            continue
        model = keras.saving.load_model(run["model"], safe_mode=True)
        out[nb] = (
            predict_tta(model, images[name]["validation"], None),
            predict_tta(model, images[name]["test"], None),
        )
    return out


def ensemble(parts, rungs: list[Rung], extra: dict[str, tuple]) -> Ensemble:
    """Every rung and faithful model (each averaged over its test-time variants), weighted by
    non-negative least squares on the validation set only."""
    members = [r.key for r in rungs] + list(extra)
    val = [r.val for r in rungs] + [v for v, _ in extra.values()]
    test = [r.test for r in rungs] + [t for _, t in extra.values()]
    val_means = np.stack([v.mean(0) for v in val], 1)  # [N_val, members]
    w = nonneg_weights(val_means, parts["validation"]["boneage"].to_numpy())
    val_pred = val_means @ w
    test_pred = np.stack([t.mean(0) for t in test], 1) @ w
    # Spread: weighted SD over every member's every test-time variant.
    all_preds = np.concatenate(test, 0)  # [sum V, N]
    all_w = np.concatenate([np.full(len(t), wi / len(t)) for t, wi in zip(test, w, strict=True)])
    sd = np.sqrt(np.maximum(all_w @ (all_preds - test_pred) ** 2, 0.0))
    return Ensemble(members, w, val_pred, test_pred, sd)


@dataclasses.dataclass
class Calibrated:
    """The ensemble's bias correction and prediction intervals (fitted on validation data), and
    what they give on the test set: coverage, width, and the error by age band before and
    after the correction."""

    fit: calibration.Calibration | None
    test: dict  # coverage, median width, level, n; and the corrected estimates' metrics
    bands: pd.DataFrame  # tables.error_by_group rows: before and after
    corrected: np.ndarray | None  # [N_test] bias-corrected estimates
    low: np.ndarray | None
    high: np.ndarray | None


def calibrate(cfg, parts, ens: Ensemble) -> Calibrated:
    """Fit the bias correction and the conformal intervals (``cfg.interval_level``) on the
    ensemble's *validation* predictions only, then measure them on the test set, which they
    never saw. A model that learnt too little for a correction gets none, saying why."""
    val, test = parts["validation"], parts["test"]
    try:
        fit = calibration.fit(
            ens.val, val["boneage"], val["male"], level=cfg.interval_level, seed=cfg.seed
        )
    except ValueError as e:
        print(f"No bias correction or prediction interval: {e}")
        return Calibrated(None, {}, pd.DataFrame(), None, None, None)
    true = test["boneage"].to_numpy(float)
    corrected = fit.correct(ens.test, test["male"].to_numpy(bool))
    low, high = fit.interval(corrected)
    frame = pd.DataFrame({"true": true, "male": test["male"].to_numpy(bool)})
    bands = tables.error_by_group(
        {
            "ensemble": frame.assign(predicted=ens.test),
            "ensemble, bias-corrected": frame.assign(predicted=corrected),
        }
    )
    summary = calibration.coverage(fit, ens.test, true, test["male"].to_numpy(bool))
    try:  # the same calibration on validation images it never saw: exchangeable data's coverage
        summary["validation_cv"] = calibration.cross_validated(
            ens.val, val["boneage"], val["male"], level=cfg.interval_level, seed=cfg.seed
        )
    except ValueError as e:
        print(f"No cross-validated coverage on the validation set: {e}")
    summary["worst_band_bias"] = worst_band_bias(bands)
    summary["corrected"] = metrics.regression(true, corrected)
    train_mean = float(parts["train"]["boneage"].mean())
    summary["corrected_intervals"] = evaluation.intervals(true, corrected, train_mean)
    return Calibrated(fit, summary, bands, corrected, low, high)


BAND_MIN_N = 15  # an age band's mean error is judged where it holds at least this many images


BAND_BIAS_LIMIT = 5.0  # months: the largest mean error by age band a correction should leave


def worst_band_bias(bands: pd.DataFrame) -> dict:
    """The largest absolute mean error (months) over the age bands holding at least
    ``BAND_MIN_N`` images, before and after the correction, and whether each stays within
    ``BAND_BIAS_LIMIT``: the band of each, so that a reader sees where it fails."""
    out = {"min_n": BAND_MIN_N, "limit": BAND_BIAS_LIMIT}
    for key, model in (("before", "ensemble"), ("after", "ensemble, bias-corrected")):
        rows = bands[
            (bands["model"] == model)
            & bands["group"].isin(tables.AGE_BANDS)
            & (bands["n"] >= BAND_MIN_N)
        ].dropna(subset=["bias"])
        if rows.empty:
            out[key] = None
            continue
        worst = rows.loc[rows["bias"].abs().idxmax()]
        out[key] = {
            "band": str(worst["group"]),
            "bias": float(worst["bias"]),
            "within_limit": bool(abs(worst["bias"]) <= BAND_BIAS_LIMIT),
        }
    return out


def describe_calibration(cal: Calibrated) -> str:
    """What the correction and the intervals gave on the test set, in two sentences."""
    t = cal.test
    text = (
        f"On the {t['n']} test images: {_coverage(t)} of true ages inside the "
        f"{t['level']:.0%} intervals (median width {t['median_width']:.1f} months); test MAE "
        f"after the bias correction {t['corrected']['mae']:.2f} months."
    )
    cv = t.get("validation_cv")
    if cv:
        text += (
            f" Fitted on {cv['folds'] - 1} of {cv['folds']} folds of the validation set and "
            f"measured on the one left out, in turn: {_coverage(cv)} (median width "
            f"{cv['median_width']:.1f})."
        )
    worst = t.get("worst_band_bias") or {}
    if worst.get("before") and worst.get("after"):
        b, a = worst["before"], worst["after"]
        text += (
            f" Largest mean error of an age band with at least {worst['min_n']} images: "
            f"{b['bias']:+.1f} months ({b['band']}) before the correction, {a['bias']:+.1f} "
            f"({a['band']}) after, {'within' if a['within_limit'] else 'beyond'} "
            f"{worst['limit']:.0f} months."
        )
    return text


def _coverage(c: dict) -> str:
    """``82.0% (76.1-86.7%), below 90%``: a coverage, its Wilson interval and its verdict."""
    if "coverage_low" not in c:  # a metrics.json written before coverages had intervals
        return f"{c['coverage']:.1%}"
    return (
        f"{c['coverage']:.1%} ({c['coverage_low']:.1%}-{c['coverage_high']:.1%}; "
        f"{c['verdict']} {c['level']:.0%})"
    )


def ablation(cfg, parts, rungs, ens: Ensemble, faithful) -> pd.DataFrame:
    """The ablation table: the faithful models first, then each rung, then TTA and the ensemble;
    every row with its test MAE's 95% interval (``mae_low``, ``mae_high``), and each of 07's
    steps with its paired verdict against the step before (:func:`ladder_rows`)."""
    mean = evaluation.mean_predictor(parts["train"], parts["test"], loss="msle")
    rows = []
    for run in faithful.values():
        m = run["metrics"]
        if "test" in m:
            rows.append(
                ablation_row(
                    run["label"],
                    "",
                    m["test"],
                    m.get("mean_predictor", mean),
                    m.get("train_seconds"),
                    m.get("params_count"),
                    run["split"],
                    ci=m.get("intervals"),
                )
            )
    return pd.DataFrame(rows + ladder_rows(cfg, parts, rungs, ens, mean))


def ladder_rows(cfg, parts, rungs: list[Rung], ens: Ensemble, mean: dict) -> list[dict]:
    """The ablation table's rows of notebook 07: each rung, the last with TTA, the ensemble.

    Each step is compared with the step before it on the same test images (paired bootstrap of
    the MAE difference): that is the difference the table states, so it carries its verdict.
    The first rung has nothing before it in the ladder (the faithful models differ in more than
    one ingredient) and is compared with nothing.
    """
    true = parts["test"]["boneage"].to_numpy()
    train_mean = float(parts["train"]["boneage"].mean())
    last = rungs[-1]
    used = ", ".join(f"{k} {w:.2f}" for k, w in zip(ens.members, ens.weights, strict=True) if w > 0)
    steps = [(f"07 {r.key}", r.label, r.test[0], r.seconds, r.params_count) for r in rungs]
    steps.append(
        (
            f"07 {last.key} + TTA",
            "+ test-time augmentation (four flips)",
            last.test.mean(0),
            last.seconds,
            last.params_count,
        )
    )
    steps.append(
        (
            "07 ensemble",
            f"+ ensemble, validation-chosen weights ({used})",
            ens.test,
            sum(r.seconds for r in rungs),
            None,
        )
    )
    rows, before = [], None
    for what, added, pred, seconds, n_params in steps:
        ci = evaluation.intervals(true, pred, train_mean)
        vs = None if before is None else paired_mae(true, pred, before)
        test = metrics.regression(true, pred)
        rows.append(ablation_row(what, added, test, mean, seconds, n_params, cfg.split, ci, vs))
        before = pred
    return rows


def paired_mae(true, pred, before) -> dict | None:
    """:func:`statistics.paired` MAE of ``pred`` against ``before`` (the analysis' fixed seed),
    or None where a prediction is not a number (a diverged rung has no verdict, not an error)."""
    try:
        return statistics.paired(true, pred, before, seed=evaluation.BOOTSTRAP_SEED)
    except ValueError:
        return None


def rung_metrics(r: Rung, true: np.ndarray, train_mean: float | None = None) -> dict:
    """One rung's entry in ``metrics.json``: its recipe, test metrics without and with TTA (each
    with its bootstrap intervals, ``intervals`` and ``intervals_tta``; ``train_mean`` gives their
    ratio to the mean predictor), cost."""
    return {
        "label": r.label,
        "recipe": dataclasses.asdict(r.recipe),
        "test": metrics.regression(true, r.test[0]),
        "intervals": evaluation.intervals(true, r.test[0], train_mean),
        "test_tta": metrics.regression(true, r.test.mean(0)),
        "intervals_tta": evaluation.intervals(true, r.test.mean(0), train_mean),
        "train_seconds": r.seconds,
        "params_count": r.params_count,
        "best_epoch": r.history.attrs.get("best_epoch"),
        "averaged_epochs": r.history.attrs.get("averaged_epochs"),
    }


def save(
    cfg, parts, rungs: list[Rung], ens: Ensemble, table: pd.DataFrame, faithful, cal: Calibrated
) -> None:
    """Write the ablation table, the ensemble's predictions and recipe, each rung's history, and
    ``metrics.json`` (the best of the ladder: the ensemble)."""
    test = parts["test"]
    true = test["boneage"].to_numpy()
    pred = pd.DataFrame(
        {
            "id": test["id"].to_numpy(),
            "true": true,
            "predicted": ens.test,
            "spread": ens.test_sd,
            "male": test["male"].to_numpy(bool),
            "split": test["split"].to_numpy(),
        }
    )
    if cal.fit is not None:
        pred = pred.assign(corrected=cal.corrected, interval_low=cal.low, interval_high=cal.high)
        results.write_csv(cfg.run_dir / runfiles.table("error_by_age_band"), cal.bands)
    results.write_csv(cfg.run_dir / runfiles.PREDICTIONS, pred)
    results.write_csv(
        cfg.run_dir / runfiles.VALIDATION_PREDICTIONS, validation_frame(parts, ens, cal)
    )
    results.write_csv(cfg.run_dir / runfiles.ABLATION, table)
    _write_ensemble(cfg, rungs, ens, faithful, cal)
    mean = evaluation.mean_predictor(parts["train"], test, loss="msle")
    train_mean = float(parts["train"]["boneage"].mean())
    best = metrics.regression(true, ens.test)
    best["loss"] = evaluation.loss_value("msle", true, ens.test)
    provenance.write_metrics(
        cfg,
        {
            "test": best,
            "intervals": evaluation.intervals(true, ens.test, train_mean),
            "mean_predictor": mean,
            "rungs": {r.key: rung_metrics(r, true, train_mean) for r in rungs},
            "ensemble": dict(zip(ens.members, map(float, ens.weights), strict=True)),
            "train_seconds": float(sum(r.seconds for r in rungs)),
            "epochs_run": int(max(len(r.history) for r in rungs)),
            "n_train": len(parts["train"]),
            "n_val": len(parts["validation"]),
            "n_test": len(test),
            "test_labels": splitting.label_version(test),
            "calibration": cal.test or None,
        },
        model="beyond",
    )


def validation_frame(parts, ens: Ensemble, cal: Calibrated) -> pd.DataFrame:
    """The ensemble's validation predictions, on which its weights, bias correction and
    intervals were fitted (and its corrected estimates there), so that any of them can be
    checked or refitted without the test set."""
    val = parts["validation"]
    frame = pd.DataFrame(
        {
            "id": val["id"].to_numpy(),
            "true": val["boneage"].to_numpy(),
            "predicted": ens.val,
            "male": val["male"].to_numpy(bool),
        }
    )
    if cal.fit is not None:
        frame["corrected"] = cal.fit.correct(ens.val, frame["male"].to_numpy(bool))
    return frame


def _write_ensemble(cfg, rungs: list[Rung], ens: Ensemble, faithful, cal: Calibrated) -> None:
    """``ensemble.json``: the members (paths relative to the folder) with their weights, and the
    calibration, all chosen on validation data; what ``boneage-predict`` reads from a folder."""
    paths = {r.key: f"{runfiles.BEYOND_MODELS}/{r.key}.keras" for r in rungs}  # relative
    paths.update(
        {
            nb: os.path.relpath(run["model"], cfg.run_dir)
            for nb, run in faithful.items()
            if run["model"]
        }
    )
    members = [
        {"model": paths[k], "weight": float(w)}
        for k, w in zip(ens.members, ens.weights, strict=True)
    ]
    results.write_json(
        cfg.run_dir / runfiles.ENSEMBLE,
        {
            "members": members,
            "tta": list(preprocess.TTA),
            "weights_chosen_on": "validation",
            "calibration": None if cal.fit is None else cal.fit.to_dict(),
        },
    )


def variant_montage(images, parts, n: int = 4):
    """The same test images in each preprocessing variant the ladder uses, side by side."""
    import matplotlib.pyplot as plt

    names = [name for name in images if name.startswith("input_")]
    test = parts["test"]
    order = np.argsort(test["boneage"].to_numpy())
    pick = order[np.linspace(0, len(order) - 1, min(n, len(order))).astype(int)]
    fig, axes = plt.subplots(
        len(names), len(pick), figsize=(2.2 * len(pick), 2.3 * len(names)), squeeze=False
    )
    for r, name in enumerate(names):
        for c, i in enumerate(pick):
            ax = axes[r, c]
            ax.imshow(images[name]["test"][i], cmap="gray", vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{test['boneage'].iloc[i] / 12:.1f} y", fontsize=9)
            if c == 0:
                ax.set_ylabel(name.removeprefix("input_"), fontsize=9)
    fig.tight_layout()
    plt.close(fig)
    return fig


def figures(cfg, parts, rungs: list[Rung], ens: Ensemble) -> dict:
    """Predicted vs true for the ensemble, and every rung's validation curve in one plot; saved."""
    import matplotlib.pyplot as plt

    from nblib.report import plots

    test = parts["test"]
    pred = pd.DataFrame({"true": test["boneage"].to_numpy(), "predicted": ens.test})
    figs = {"pred_vs_true": plots.pred_vs_true(pred, title="07 ensemble on the test set")}
    fig, ax = plt.subplots(figsize=(6, 4))
    for r in rungs:
        col = "val_mae" if "val_mae" in r.history else "val_loss"
        ax.plot(r.history["epoch"], r.history[col], label=r.key)
    ax.set_xlabel("epoch"), ax.set_ylabel("validation MAE (months)")
    ax.set_title("07: validation MAE of each rung")
    ax.legend(fontsize=8)
    fig.tight_layout()
    plt.close(fig)
    figs["ladder_curves"] = fig
    for name, f in figs.items():
        results.save_figure(f, cfg.run_dir / f"{name}.png")
    return figs


def gradcam_figure(cfg, rung: Rung, images, parts, sex, n: int = 5):
    """Grad-CAM of the last rung on ``n`` test images spread over the age range; saved."""
    import matplotlib.pyplot as plt

    test = parts["test"]
    order = np.argsort(test["boneage"].to_numpy())
    pick = order[np.linspace(0, len(order) - 1, min(n, len(order))).astype(int)]
    from nblib.models import gradcam

    imgs = images[f"input_{recipe_variant(rung.recipe)}"]["test"][pick]
    males = sex["test"][pick]
    names = ("image", "sex") if rung.recipe.sex else ("image",)
    cam = gradcam.GradCam(rung.model, names)
    fmaps = keras.Model(rung.model.inputs, cam.layer.output).predict(
        inputs_of(imgs, males if rung.recipe.sex else None), verbose=0
    )
    cams = [
        cam.heat(f, "M" if m else "F", imgs.shape[1]) for f, m in zip(fmaps, males, strict=True)
    ]
    fig, axes = plt.subplots(1, len(pick), figsize=(2.4 * len(pick), 2.8), squeeze=False)
    for ax, img, heat, i in zip(axes[0], imgs, cams, pick, strict=True):
        ax.imshow(img, cmap="gray", vmin=0, vmax=255)
        ax.imshow(heat, cmap="jet", alpha=0.4, vmin=0, vmax=1)
        ax.set_title(f"true {test['boneage'].iloc[i] / 12:.1f} y", fontsize=9)
        ax.axis("off")
    fig.suptitle(f"Grad-CAM of 07 {rung.key}", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    results.save_figure(fig, cfg.run_dir / "gradcam.png")
    return fig
