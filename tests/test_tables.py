"""The papers' tables and the error by group against hand-computed values; the report shows what
the same functions compute from the files the notebooks wrote; the report's figures are composed
of the notebooks' plot functions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nblib.core import results, runfiles
from nblib.report import plots, reporting, tables


def _pred(true, predicted, male):
    return pd.DataFrame(
        {
            "id": [f"i{k}" for k in range(len(true))],
            "true": np.asarray(true, float),
            "predicted": np.asarray(predicted, float),
            "male": male,
            "split": "test",
        }
    )


def test_error_by_group_age_bands_and_sex():
    pred = _pred(
        [12.0, 24.0, 80.0, 130.0, 168.0, 200.0],  # 1, 2, 6.7, 10.8, 14, 16.7 years
        [14.0, 20.0, 80.0, 140.0, 160.0, 210.0],  # errors 2, -4, 0, 10, -8, 10
        [True, False, True, False, True, False],
    )
    g = tables.error_by_group({"m": pred}).set_index("group")
    assert list(g.columns) == ["model", "n", "MAE", "bias"]
    assert list(g.index) == ["0-2 y", "2-6 y", "6-10 y", "10-14 y", "14+ y", "female", "male"]
    assert g["n"].tolist() == [1, 1, 1, 1, 2, 3, 3]
    assert g.loc["0-2 y", "MAE"] == 2 and g.loc["2-6 y", "bias"] == -4  # 24 months is 2-6 y
    assert g.loc["6-10 y", "MAE"] == 0 and g.loc["10-14 y", "bias"] == 10
    assert g.loc["14+ y", "MAE"] == 9 and g.loc["14+ y", "bias"] == 1  # 168 months is 14+ y
    assert g.loc["female", "MAE"] == 8.0 and g.loc["male", "MAE"] == 3.33  # 10/3, rounded


def test_error_by_group_reads_sex_as_text_and_leaves_empty_bands_empty():
    as_bool = tables.error_by_group({"m": _pred([100.0, 50.0], [90.0, 56.0], [True, False])})
    as_text = tables.error_by_group({"m": _pred([100.0, 50.0], [90.0, 56.0], ["True", "False"])})
    pd.testing.assert_frame_equal(as_bool, as_text)  # a CSV read back gives the same table
    g = as_bool.set_index("group")
    assert g.loc["6-10 y", "n"] == 1 and g.loc["male", "MAE"] == 10 and g.loc["female", "bias"] == 6
    assert g.loc["0-2 y", "n"] == 0 and pd.isna(g.loc["0-2 y", "MAE"])


def test_table1_in_the_papers_units():
    m = {
        "test": {"loss": 0.1, "rmse": 20.0, "mape": 15.0, "r2": 0.6, "mae": 16.123456},
        "mean_predictor": {"loss": 0.2, "rmse": 40.0, "mape": 30.0, "r2": None, "mae": 32.0},
    }
    t = tables.table1("resnet50", m).set_index("metric")
    assert list(t.index) == ["loss (MSLE)", "RMSE (months)", "MAPE (%)", "R^2 (%)", "MAE (months)"]
    assert (t["model"] == "ResNet-50 (GELU)").all()
    assert t.loc["R^2 (%)", "ours"] == 60.0  # a fraction in metrics.json, a percentage here
    assert t.loc["R^2 (%)", "paper (reference)"] == 81.08
    assert pd.isna(t.loc["R^2 (%)", "ours, mean predictor"])  # a stored NaN stays empty
    assert t.loc["MAE (months)", "ours"] == 16.1235 and pd.isna(
        t.loc["MAE (months)", "paper (reference)"]
    )
    assert t.loc["RMSE (months)", "ours, mean predictor"] == 40.0


def test_table2_and_table5_beside_the_paper():
    t2 = tables.table2([{"stage": 1, "epochs": 3, "loss": 0.01234567, "psnr": 21.456}])
    assert t2.loc[0, "paper epochs (reference)"] == 300 and t2.loc[0, "our MSE"] == 0.012346
    assert t2.loc[0, "our val PSNR (dB)"] == 21.46
    models = {
        "ae_bonet": {"label": "AE-BoNet", "init": "autoencoder", "test": {"mae": 20.004}},
        "random_init": {"label": "AE-BoNet, random init", "init": "random", "test": {"mae": 25}},
        "inception_v3_80": {"label": "InceptionV3", "init": "random", "test": {"mse": 123.46}},
    }
    t5 = tables.table5(models, {"mae": 30.0, "mse": 900.0}).set_index("model")
    assert t5.loc["AE-BoNet", "paper MAE @256 (reference)"] == 9.3
    assert pd.isna(t5.loc["AE-BoNet, random init", "paper MAE @256 (reference)"])  # ours alone
    assert t5.loc["InceptionV3", "paper MAE @450 (reference)"] == 13.6  # inception_v3 at 80 px
    assert t5.loc["InceptionV3", "our MSE"] == 123.5
    assert t5.index[-1] == "predicting the training mean" and t5["our MAE"].iloc[-1] == 30.0
    t4 = tables.table4(models)
    assert t4["our MAE"].tolist()[-1] == 20.0 and t4["method"].tolist()[-1] == "AE-BoNet"


def test_the_report_shows_the_notebooks_tables(tmp_path):
    """The report and a notebook call one function per table: same headers, same numbers."""
    folder = tmp_path / "run" / runfiles.PAPER1_DIRS["inception_v4"]
    rng = np.random.default_rng(1)
    true = rng.uniform(5, 220, 30)
    pred = _pred(true, true + rng.normal(0, 15, 30), [k % 3 == 0 for k in range(30)])
    test = {"loss": 0.1, "rmse": 18.0, "mape": 11.0, "r2": 0.7, "mae": 14.0}
    m = {"test": test, "mean_predictor": {k: 2 * v for k, v in test.items()}, "n_test": 30}
    results.write_csv(folder / runfiles.PREDICTIONS, pred)
    results.write_json(folder / runfiles.METRICS, {"params": {}, "metrics": m})
    rep = reporting.build(tmp_path / "run")
    pd.testing.assert_frame_equal(rep.tables["table1"], tables.table1("inception_v4", m))
    groups = tables.error_by_group({"Inception-V4": pred})
    pd.testing.assert_frame_equal(
        rep.tables["error_by_group"], groups[reporting.GROUP_COLUMNS], check_dtype=False
    )


def test_plots_draw_into_given_axes_and_the_report_composes_them(tmp_path):
    import matplotlib.pyplot as plt

    pred = _pred([30.0, 90.0, 150.0], [40.0, 80.0, 160.0], [True, False, True])
    fig, (a, b) = plt.subplots(1, 2)
    n_figs = len(plt.get_fignums())
    assert plots.bland_altman(pred, title="x", ax=a) is fig
    assert plots.pred_vs_true(pred, ax=b) is fig
    assert len(plt.get_fignums()) == n_figs  # drew into the given axes, made no figure
    assert "bias 3.3" in a.get_title() and len(a.collections) == 1  # 10, -10, 10: bias 10/3
    own = plots.bland_altman(pred)
    assert own is not fig and len(own.axes) == 1
    groups = tables.error_by_group({"a": pred, "b": pred.assign(predicted=pred["true"])})
    bars = plots.error_by_group(groups).axes[0].patches
    assert len(bars) == 2 * 7  # one bar per model and group (empty bands are drawn empty)
    grid = plots.grid({"a": pred, "b": pred, "c": pred}, plots.pred_vs_true, cols=2)
    assert len(grid.axes) == 4 and not grid.axes[3].axison  # 3 panels, the 4th left blank
    plt.close("all")
