"""The claims table: made-up result files whose verdicts are known in advance, so that each rule
(a number against our interval, a ranking by paired bootstrap, a trend by stage) and each
qualifier (synthetic data, reduced scale, a notebook not run) is seen to give the right word.
No model is trained."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nblib.core import config, results, runfiles
from nblib.report import claims, reference, reporting
from nblib.train import statistics

N = 200  # the papers' test-set size: a run at the papers' scale has no "reduced scale" note
RNG = np.random.default_rng(11)
TRUE = RNG.uniform(12, 228, N).round(2)
Z = RNG.standard_normal(N)
Z = Z / np.sqrt(np.mean(Z**2))  # errors of RMS exactly 1, scaled below to a chosen RMSE


def _with_rmse(rmse: float) -> np.ndarray:
    return TRUE + rmse * Z


def _with_mae(mae: float) -> np.ndarray:
    return TRUE + mae / np.mean(np.abs(Z)) * Z


def _params(tmp_path, **kw) -> dict:
    """A notebook's params on real data (a folder without phantom.json) at the papers' scale."""
    return {"data_dir": str(tmp_path / "rsna"), "image_size": 256, "width": 1.0, **kw}


def _test_metrics(pred: np.ndarray) -> dict:
    s = claims.metric_samples(TRUE, pred, np.arange(N)[None])
    out = {k: float(v[0]) for k, v in s.items()}
    return {**out, "loss": out["msle"]}


def _predictions(folder, pred: np.ndarray, tag: str | None = None) -> None:
    frame = pd.DataFrame({"id": [f"{i:04d}" for i in range(N)], "true": TRUE, "predicted": pred})
    results.write_csv(folder / runfiles.predictions(tag), frame.assign(male=True, split="test"))


def _paper1(run, stem: str, pred: np.ndarray, params: dict, stored: bool = True) -> None:
    """Notebook 03 or 04's files; ``stored=False`` leaves out the intervals (an older run)."""
    m = {"test": _test_metrics(pred), "mean_predictor": {}, "n_test": N}
    if stored:
        m["intervals"] = statistics.intervals(TRUE, pred, mean_value=float(TRUE.mean()))
    results.write_json(run / stem / runfiles.METRICS, {"params": params, "metrics": m})
    _predictions(run / stem, pred)


def _autoencoder(run, val_losses: list[float], params: dict) -> None:
    stages = [
        {"stage": i + 1, "epochs": e, "loss": v, "accuracy": 0.5, "val_loss": v}
        for i, (v, e) in enumerate(zip(val_losses, (300, 200, 100, 150, 150), strict=False))
    ]
    doc = {"params": params, "metrics": {"stages": stages}}
    results.write_json(run / runfiles.AUTOENCODER_DIR / runfiles.METRICS, doc)


def _bonet(run, preds: dict[str, np.ndarray], params: dict) -> None:
    """Notebook 06's files: ``preds`` by model key (ae_bonet, random_init, mobilenet_256...)."""
    folder, models = run / runfiles.BONET_DIR, {}
    for key, pred in preds.items():
        _predictions(folder, pred, key)
        models[key] = {
            "label": key,
            "init": "autoencoder" if key == "ae_bonet" else "random",
            "image_size": params["image_size"],
            "test": _test_metrics(pred),
            "intervals": statistics.intervals(TRUE, pred),
        }
    doc = {"params": {"baseline_weights": "imagenet", **params}, "metrics": {"models": models}}
    results.write_json(folder / runfiles.METRICS, doc)


def _verdicts(run) -> dict[str, str]:
    return claims.build(run).set_index("id")["verdict"].to_dict()


@pytest.fixture
def real_run(tmp_path):
    """A run on real data at the papers' scale whose every verdict is known."""
    run = tmp_path / "run"
    official, rnd = _params(tmp_path, split="official"), _params(tmp_path, split="random")
    _paper1(run, "03_resnet50", _with_rmse(17.85), official)  # the paper's RMSE exactly
    _paper1(run, "04_inception_v4", _with_rmse(30.0), official, stored=False)  # far above 15.09
    _autoencoder(run, [0.02, 0.015, 0.016, 0.012, 0.011], rnd)  # stage 3 rises
    _bonet(
        run,
        {
            "ae_bonet": _with_mae(3.0),  # far below the paper's 9.3
            "random_init": _with_mae(30.0),  # pretraining clearly helps
            "mobilenet_256": _with_mae(12.9),
            "vgg16_256": _with_mae(12.9) + 0.01,  # as good as MobileNet: no order shown
        },
        rnd,
    )
    return run


def test_a_number_is_consistent_inside_our_interval_and_better_or_worse_outside(real_run):
    v = _verdicts(real_run)
    assert v["p1-resnet50-rmse"] == "consistent"  # 17.85 is our point value
    assert v["p1-inception_v4-rmse"] == "ours worse"  # our whole interval lies above 15.09
    assert v["p1-inception_v4-r2"] == "ours worse"  # higher is better: ours lies below 86.34
    assert v["p2-ae_bonet-mae"] == "ours better"  # our whole interval lies below 9.3
    assert v["p2-mobilenet-mae"] == "consistent"
    row = claims.build(real_run).set_index("id").loc["p1-resnet50-rmse"]
    assert row["paper's value"] == "17.85" and row["rule"] == "interval"
    assert row["ours (95% interval)"].startswith("17.85 (") and row["notes"] == ""


def test_stored_and_recomputed_intervals_agree(real_run):
    """04 stores no interval (an older run): the claims bootstrap its predictions with the
    notebooks' seed, and get what the notebook would have stored."""
    run = claims.Run(real_run)
    stored = run.model("03_resnet50", 1)
    assert claims.interval(stored, "rmse") is stored.intervals["rmse"]
    fresh = run.model("04_inception_v4", 1)
    want = statistics.intervals(TRUE, _with_rmse(30.0))["rmse"]
    got = claims.interval(fresh, "rmse")
    assert got == pytest.approx({k: want[k] for k in ("value", "low", "high")})
    mape = claims.interval(fresh, "mape")  # a metric no metrics.json holds an interval of
    assert mape["low"] < mape["value"] < mape["high"]


def test_rankings_by_paired_bootstrap(real_run):
    v = _verdicts(real_run)
    assert v["p2-pretraining-helps"] == "supported"
    assert v["p1-inception_v4-beats-resnet50"] == "contradicted"  # ours: ResNet-50 better
    assert v["p2-baselines-order"] == "not shown"  # MobileNet and VGG16 alike here
    assert v["p2-ae_bonet-beats-baselines"] == "supported"  # both baselines that ran
    row = claims.build(real_run).set_index("id").loc["p2-pretraining-helps"]
    assert row["rule"] == "paired" and row["ours (95% interval)"].startswith("MAE ae_bonet - ")


def test_a_rising_stage_is_not_supported_and_a_falling_trend_is(real_run, tmp_path):
    assert _verdicts(real_run)["p2-table2-falling"] == "not supported"
    _autoencoder(real_run, [0.02, 0.015, 0.014, 0.012, 0.011], _params(tmp_path, split="random"))
    assert _verdicts(real_run)["p2-table2-falling"] == "supported"


def test_a_missing_notebook_or_model_is_not_run(real_run):
    (real_run / "04_inception_v4" / runfiles.METRICS).unlink()
    table = claims.build(real_run).set_index("id")
    for metric in ("loss", "rmse", "mape", "r2"):
        assert table.loc[f"p1-inception_v4-{metric}", "verdict"] == "not run"
    assert table.loc["p1-inception_v4-beats-resnet50", "verdict"] == "not run"
    assert table.loc["p2-xception-mae", "verdict"] == "not run"  # 06 ran without Xception
    assert table.loc["p1-resnet50-rmse", "verdict"] == "consistent"  # the rest is unchanged


def test_only_one_baseline_gives_no_order(tmp_path):
    run = tmp_path / "run"
    _bonet(run, {"ae_bonet": _with_mae(9.3), "mobilenet_64": _with_mae(20.0)}, _params(tmp_path))
    row = claims.build(run).set_index("id").loc["p2-baselines-order"]
    assert row["verdict"] == "not run" and "mobilenet_64" in row["notes"]


def test_a_synthetic_run_is_not_comparable(tmp_path):
    run = tmp_path / "run"
    synthetic = {"data_dir": str(config.DEFAULT_DATA_DIR), "image_size": 80, "width": 0.125}
    _paper1(run, "03_resnet50", _with_rmse(17.85), {**synthetic, "split": "official"})
    _autoencoder(run, [0.02, 0.01], {**synthetic, "split": "random"})
    _bonet(run, {"ae_bonet": _with_mae(3.0), "random_init": _with_mae(30.0)}, synthetic)
    table = claims.build(run).set_index("id")
    ran = table[table["verdict"] != "not run"]
    assert {"p1-resnet50-rmse", "p2-table2-falling", "p2-pretraining-helps"} <= set(ran.index)
    assert (ran["verdict"] == "not comparable").all()
    assert ran["notes"].str.startswith("synthetic data").all()
    assert ran.loc["p1-resnet50-rmse", "ours (95% interval)"].startswith("17.85 (")  # still shown
    # a phantom passed with --data is synthetic too
    phantom = tmp_path / "my_phantom"
    phantom.mkdir()
    (phantom / "phantom.json").write_text("{}")
    assert claims.is_synthetic({"data_dir": str(phantom)})
    assert not claims.is_synthetic({"data_dir": str(tmp_path / "rsna")})


def test_a_smaller_scale_qualifies_the_verdict_and_says_how(tmp_path):
    run = tmp_path / "run"
    small = _params(tmp_path, split="official", image_size=128, width=0.25)
    _paper1(run, "03_resnet50", _with_rmse(17.85), small)
    row = claims.build(run).set_index("id").loc["p1-resnet50-rmse"]
    assert row["verdict"] == "consistent at reduced scale"
    assert "128 px (paper: 256)" in row["notes"] and "width 0.25 (paper: 1)" in row["notes"]


def test_every_claim_says_where_in_its_paper_it_stands():
    ids = [c.id for c in reference.CLAIMS]
    assert len(ids) == len(set(ids))
    places = ("Table", "Sec.", "Abstract", "Results", "Discussion", "Conclusion")
    for c in reference.CLAIMS:
        assert c.paper in (1, 2) and c.statement and c.kind in claims.RULE_OF, c.id
        assert any(p in c.where for p in places), (c.id, c.where)
        if c.kind == "number":
            assert isinstance(c.value, float), c.id
        if c.kind == "ranking":
            assert c.pairs and all(ref in c.ours for pair in c.pairs for ref in pair), c.id
    assert {"p1-resnet50-rmse", "p1-inception_v4-r2", "p2-table2-falling", "p2-ae_bonet-mae"} < set(
        ids
    )


def test_the_report_has_a_claims_section_with_its_rules(real_run, tmp_path):
    rep = reporting.build(real_run)
    assert list(rep.tables["claims"].columns) == claims.COLUMNS
    text = reporting.write(rep, tmp_path / "08").read_text()
    assert "## Claims" in text and "p2-pretraining-helps" in text
    for name in claims.RULES:
        assert f"**{name}**" in text
    assert (tmp_path / "08" / runfiles.table("claims")).is_file()
