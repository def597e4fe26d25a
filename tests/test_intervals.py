"""Error bars on every number: the metrics.json files the experiments write hold bootstrap
intervals beside their test metrics, the run's summary shows them (and still reads older files
without them), the report's comparisons carry paired verdicts its text does not overstate, and
notebook 07's ablation table compares each step with the one before it. No model is trained."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from nblib.core import config, results, runfiles
from nblib.experiments import beyond, paper1
from nblib.report import reporting, summary
from nblib.train import evaluation, statistics

RNG = np.random.default_rng(7)
N = 60
TRUE = RNG.uniform(10, 220, N).round(1)


def _parts(n_train: int = 40) -> dict[str, pd.DataFrame]:
    def table(ages, split):
        return pd.DataFrame(
            {
                "id": [f"{split}{i:03d}" for i in range(len(ages))],
                "path": [f"/x/{split}{i}.png" for i in range(len(ages))],
                "boneage": np.asarray(ages, float),
                "male": np.arange(len(ages)) % 2 == 0,
                "split": split,
            }
        )

    return {
        "train": table(RNG.uniform(10, 220, n_train), "train"),
        "validation": table(RNG.uniform(10, 220, 10), "validation"),
        "test": table(TRUE, "test"),
    }


def _assert_ordered(ci: dict) -> None:
    """Every interval of an ``intervals`` section holds its value between its bounds."""
    for key in ("mae", "rmse", "ratio_to_mean_predictor"):
        part = ci[key]
        assert part["low"] <= part["value"] <= part["high"], (key, part)
    assert ci["n"] == N and ci["seed"] == evaluation.BOOTSTRAP_SEED and ci["level"] == 0.95


def test_paper1_metrics_json_holds_the_test_intervals(tmp_path):
    """``evaluation.score`` then ``paper1.save``, the notebooks' path: intervals beside ``test``."""
    parts = _parts()
    x = (parts["test"]["boneage"].to_numpy("float32") / 100.0)[:, None]
    inp = keras.Input((1,))
    dense = keras.layers.Dense(1)
    model = keras.Model(inp, dense(inp))
    dense.set_weights([np.array([[95.0]]), np.array([8.0])])  # close to y, not exactly
    ds = {"test": tf.data.Dataset.from_tensor_slices((x, x[:, 0])).batch(16)}
    scores = evaluation.score(model, parts, ds)
    history = pd.DataFrame({"epoch": [1], "loss": [1.0], "val_loss": [1.0], "seconds": [2.0]})
    cfg = config.make("03_resnet50", "smoke", output_dir=tmp_path)
    paper1.save(cfg, "resnet50", model, history, scores, parts)
    m = results.read_json(cfg.run_dir / runfiles.METRICS)["metrics"]
    assert set(m["test"]) >= {"mae", "rmse", "r2", "loss"}  # the test metrics are unchanged
    ci = m["intervals"]
    _assert_ordered(ci)
    assert ci["mae"]["value"] == pytest.approx(m["test"]["mae"])
    assert ci["mean_predictor_mae"]["value"] == pytest.approx(m["mean_predictor"]["mae"])
    assert ci["train_mean"] == pytest.approx(parts["train"]["boneage"].mean())
    # a diverged model has no interval, and the run still writes its results
    assert evaluation.intervals([1.0, 2.0], [np.nan, 1.0], 1.5) is None


def _rung(key: str, noise: float, bias: float = 0.0) -> beyond.Rung:
    test = np.stack([TRUE + bias + RNG.normal(0, noise, N) for _ in beyond.FLIPS])
    history = pd.DataFrame({"epoch": [1], "loss": [1.0], "val_loss": [1.0]})
    return beyond.Rung(key, f"+ {key}", beyond.Recipe(), None, history, test[:, :10], test, 5.0, 99)


def test_ablation_table_compares_each_step_with_the_one_before(tmp_path):
    parts = _parts()
    rungs = [_rung("base", 40.0, bias=30.0), _rung("sex", 4.0), _rung("contrast", 4.0)]
    ens = beyond.Ensemble(["sex"], np.array([1.0]), np.zeros(10), rungs[1].test[0], np.ones(N))
    cfg = config.make("07_beyond", "smoke", output_dir=tmp_path)
    table = beyond.ablation(cfg, parts, rungs, ens, {})
    for col in ("test MAE (months)", "x mean predictor", "mae_low", "mae_high"):
        assert col in table.columns
    assert list(table.columns[-2:]) == ["vs_previous", "verdict"]
    assert (table["mae_low"] <= table["test MAE (months)"]).all()
    assert (table["test MAE (months)"] <= table["mae_high"]).all()
    rows = table.set_index("model")
    assert pd.isna(rows.loc["07 base", "verdict"])  # nothing before the first rung
    assert rows.loc["07 sex", "verdict"] == "better"  # 30 months of bias gone
    assert rows.loc["07 sex", "vs_previous"].startswith("-")
    assert set(table["verdict"].dropna()) <= set(reporting.PAIRED_VERDICTS)
    assert table["verdict"].notna().sum() == len(rungs) + 1  # every step after the first
    # notebook 07's metrics.json: intervals beside the ensemble's test metrics and each rung's
    beyond.save(cfg, parts, rungs, ens, table, {}, beyond.calibrate(cfg, parts, ens))
    m = results.read_json(cfg.run_dir / runfiles.METRICS)["metrics"]
    _assert_ordered(m["intervals"])
    for r in m["rungs"].values():
        _assert_ordered(r["intervals"])
        _assert_ordered(r["intervals_tta"])
    back = results.read_csv(cfg.run_dir / runfiles.ABLATION)
    assert {"mae_low", "mae_high", "vs_previous", "verdict"} <= set(back.columns)


def _metrics_file(folder, test_mae, ci=None, mean_mae=40.0):
    metrics = {"test": {"mae": test_mae}, "mean_predictor": {"mae": mean_mae}}
    if ci is not None:
        metrics["intervals"] = ci
    results.write_json(folder / runfiles.METRICS, {"notebook": folder.name, "metrics": metrics})


def test_summary_shows_the_interval_and_still_reads_older_files(tmp_path):
    pred = TRUE + RNG.normal(0, 15, N)
    ci = statistics.intervals(TRUE, pred, mean_value=float(TRUE.mean()))
    _metrics_file(tmp_path / "03_resnet50", ci["mae"]["value"], ci)
    _metrics_file(tmp_path / "04_inception_v4", 18.25)  # an older run: no intervals
    stems = ["03_resnet50", "04_inception_v4"]
    table = summary.rows(tmp_path, stems, {s: {"status": "done", "seconds": 1.0} for s in stems})
    text = summary.console_table(table)
    row03 = next(line for line in text.splitlines() if "03_resnet50" in line)
    assert statistics.fmt_interval(ci["mae"], 1) in row03  # e.g. 12.3 (10.1-14.6)
    assert statistics.fmt_interval(ci["ratio_to_mean_predictor"], 2) in row03
    row04 = next(line for line in text.splitlines() if "04_inception_v4" in line)
    assert " 18.25 " in row04 and "18.25 (" not in row04 and row04.split()[-1] == "0.46"
    md, csv = summary.write(tmp_path, table)
    assert statistics.fmt_interval(ci["mae"], 1) in md.read_text()
    back = results.read_csv(csv).set_index("notebook")
    assert list(back.columns[: len(summary.COLUMNS) - 1]) == summary.COLUMNS[1:]
    assert back.loc["03_resnet50", "value"] == pytest.approx(ci["mae"]["value"])
    assert back.loc["03_resnet50", "low"] == pytest.approx(ci["mae"]["low"])
    assert back.loc["03_resnet50", "ratio_high"] == pytest.approx(
        ci["ratio_to_mean_predictor"]["high"]
    )
    assert pd.isna(back.loc["04_inception_v4", "low"])


def _bonet_run(tmp_path, bias: float):
    """A run folder with notebook 06's two models: AE-BoNet and its random-init ablation, whose
    errors are AE-BoNet's mirrored (the same size, so the same MAE) plus ``bias`` months."""
    folder = tmp_path / "run" / runfiles.BONET_DIR
    train_mean = 115.0
    errors = RNG.normal(0, 5.0, N)
    models = {}
    for key, label, init, error in (
        ("ae_bonet", "AE-BoNet", "autoencoder", errors),
        ("random_init", "AE-BoNet, random init", "random", bias - errors),
    ):
        pred = TRUE + error
        frame = pd.DataFrame(
            {"id": [f"{i:04d}" for i in range(N)], "true": TRUE, "predicted": pred}
        ).assign(male=True, split="test")
        results.write_csv(folder / runfiles.predictions(key), frame)
        test = {"mae": float(np.abs(pred - TRUE).mean()), "mse": 1.0, "rmse": 1.0, "r2": 0.5}
        ci = evaluation.intervals(TRUE, pred, train_mean)
        models[key] = {"label": label, "init": init, "test": test, "intervals": ci}
    mean = {"mae": float(np.abs(TRUE - train_mean).mean()), "mse": 1.0, "rmse": 1.0, "r2": 0.0}
    doc = {"params": {"image_size": 64}, "metrics": {"models": models, "mean_predictor": mean}}
    results.write_json(folder / runfiles.METRICS, doc)
    return reporting.build(tmp_path / "run")


def test_report_pairs_pretrained_and_random_init_and_says_only_what_the_verdict_supports(tmp_path):
    rep = _bonet_run(tmp_path / "clear", bias=25.0)
    pair = next(c for c in rep.comparisons if c["other"] == "AE-BoNet [random_init]")
    assert pair["verdict"] == "better" and pair["high"] < 0
    vs_mean = {c["model"]: c for c in rep.comparisons if c["other"] == reporting.MEAN_PREDICTOR}
    assert vs_mean["AE-BoNet"]["verdict"] == "better"
    table = rep.tables["comparisons"]
    assert {"test MAE (95% interval)", "difference in MAE (95% interval)", "verdict"} <= set(
        table.columns
    )
    notes = "\n".join(reporting.differences(rep))
    assert "Pretraining helped here" in notes and "learned more than the average age" in notes
    text = reporting.write(rep, tmp_path / "08").read_text()
    assert "paired comparisons on the same test images" in text
    # Two models with errors of the same size on every image: the text claims no difference.
    rep = _bonet_run(tmp_path / "tie", bias=0.0)
    pair = next(c for c in rep.comparisons if c["other"] == "AE-BoNet [random_init]")
    assert pair["verdict"] == "no difference shown"
    notes = "\n".join(reporting.differences(rep))
    assert "No difference from pretraining is shown" in notes and "helped" not in notes
