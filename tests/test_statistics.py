"""Bootstrap intervals, paired comparisons and verdicts on cases whose answer is known.

Pure NumPy: no Keras import, so these run in well under a second.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nblib.train import statistics as st

T4 = np.array([10.0, 20.0, 30.0, 40.0])
P4 = np.array([12.0, 18.0, 33.0, 40.0])  # errors 2, -2, 3, 0


def noisy(n: int = 200, sd: float = 10.0, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Ages in months and predictions with Gaussian error of the given SD."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(20.0, 220.0, n)
    return true, true + rng.normal(0.0, sd, n)


def test_constant_error_gives_a_zero_width_interval():
    true = np.arange(50, dtype=float) * 4.0  # integers: true + 3 - true is exactly 3
    out = st.intervals(true, true + 3.0)
    assert (out["mae"]["low"], out["mae"]["value"], out["mae"]["high"]) == (3.0, 3.0, 3.0)
    assert (out["rmse"]["low"], out["rmse"]["value"], out["rmse"]["high"]) == (3.0, 3.0, 3.0)


def test_metric_samples_match_hand_computed_rows():
    idx = np.array([[0, 0, 1, 3], [1, 2, 2, 3], [2, 2, 2, 2]])
    s = st.metric_samples(T4, P4, idx)
    # row 0: errors 2, 2, -2, 0; true 10, 10, 20, 40 (mean 20, SS_tot 600); SS_res 12
    # row 1: errors -2, 3, 3, 0; true 20, 30, 30, 40 (mean 30, SS_tot 200); SS_res 22
    np.testing.assert_allclose(s["mae"][:2], [1.5, 2.0])
    np.testing.assert_allclose(s["rmse"][:2], [math.sqrt(3.0), math.sqrt(5.5)])
    np.testing.assert_allclose(s["r2"][:2], [1 - 12 / 600, 1 - 22 / 200])
    # row 2: one image four times, no variance in the true ages: R^2 undefined
    assert s["mae"][2] == 3.0 and math.isnan(s["r2"][2])


def test_resample_indices_shape_range_and_seed():
    idx = st.resample_indices(7, 50, seed=3)
    assert idx.shape == (50, 7) and idx.min() >= 0 and idx.max() < 7
    expected = np.random.default_rng(3).integers(0, 7, size=(50, 7))
    np.testing.assert_array_equal(idx, expected)


def test_same_seed_same_interval_different_seed_different():
    true, pred = noisy()
    a, b, c = (st.intervals(true, pred, seed=s) for s in (0, 0, 1))
    assert a == b
    assert (a["mae"]["low"], a["mae"]["high"]) != (c["mae"]["low"], c["mae"]["high"])
    assert a["mae"]["value"] == c["mae"]["value"]  # the point value does not depend on the seed


def test_interval_contains_point_and_99_is_wider_than_95():
    true, pred = noisy()
    i95 = st.intervals(true, pred, level=0.95)
    i99 = st.intervals(true, pred, level=0.99)
    for name in st.METRICS:
        assert i95[name]["low"] < i95[name]["value"] < i95[name]["high"], name
        assert i99[name]["low"] <= i95[name]["low"] and i95[name]["high"] <= i99[name]["high"]
        width95 = i95[name]["high"] - i95[name]["low"]
        assert width95 < i99[name]["high"] - i99[name]["low"], name
    err = pred - true
    assert i95["mae"]["value"] == pytest.approx(np.mean(np.abs(err)))  # full set, not boot mean
    assert i95["r2"]["value"] == pytest.approx(
        1 - np.sum(err**2) / np.sum((true - true.mean()) ** 2)
    )


def test_intervals_record_method_and_are_json_plain():
    true, pred = noisy(n=40)
    out = st.intervals(true, pred, mean_value=float(true.mean()), n_resamples=500, seed=4)
    assert out["method"] == "bootstrap over test images, percentile"
    assert (out["n"], out["n_resamples"], out["seed"], out["level"]) == (40, 500, 4, 0.95)
    assert json.loads(json.dumps(out)) == out
    assert all(type(v) is float for v in out["mae"].values())


def test_mean_predictor_and_ratio():
    true, pred = noisy(sd=5.0)
    mean_value = 120.0
    out = st.intervals(true, pred, mean_value=mean_value)
    mean_mae = np.mean(np.abs(true - mean_value))
    assert out["mean_predictor_mae"]["value"] == pytest.approx(mean_mae)
    ratio = out["ratio_to_mean_predictor"]
    assert ratio["value"] == pytest.approx(out["mae"]["value"] / mean_mae)
    assert ratio["low"] < ratio["value"] < ratio["high"] < 1.0  # a good model beats the mean
    assert "mean_predictor_mae" not in st.intervals(true, pred)


def test_paired_verdicts_when_the_answer_is_known():
    rng = np.random.default_rng(2)
    true = rng.uniform(20.0, 220.0, 200)
    good = true + rng.normal(0.0, 3.0, 200)
    bad = true + rng.normal(0.0, 20.0, 200)
    for metric in ("mae", "rmse", "r2", "mse"):
        assert st.paired(true, good, bad, metric=metric)["verdict"] == "better", metric
        assert st.paired(true, bad, good, metric=metric)["verdict"] == "worse", metric
    r = st.paired(true, good, bad)
    assert r["difference"] == pytest.approx(r["a"] - r["b"]) and r["low"] < r["difference"]
    assert r["a"] == pytest.approx(np.mean(np.abs(good - true)))


def test_paired_identical_and_drowned_differences_show_nothing():
    true, pred = noisy(seed=5)
    same = st.paired(true, pred, pred.copy())
    assert (same["difference"], same["low"], same["high"]) == (0.0, 0.0, 0.0)
    assert same["verdict"] == "no difference shown"
    rng = np.random.default_rng(6)
    other = true + 1.01 * rng.normal(0.0, 10.0, len(true))  # 1% worse on average, same noise
    drowned = st.paired(true, pred, other)
    assert drowned["low"] < 0 < drowned["high"]
    assert drowned["verdict"] == "no difference shown"


def test_paired_scalar_pred_b_is_a_constant_predictor():
    true, pred = noisy()
    r = st.paired(true, pred, float(true.mean()))
    assert r["b"] == pytest.approx(np.mean(np.abs(true - true.mean())))
    assert r["verdict"] == "better"
    r2 = st.paired(true, pred, float(true.mean()), metric="r2")
    assert r2["b"] == pytest.approx(0.0, abs=1e-12) and r2["verdict"] == "better"


def test_verdict_boundaries():
    assert st.verdict(-2.0, -0.1) == "better"
    assert st.verdict(0.1, 2.0) == "worse"
    assert st.verdict(-1.0, 0.0) == "no difference shown"  # touching 0 is no verdict
    assert st.verdict(0.01, 0.2, lower_is_better=False) == "better"
    assert st.verdict(-0.2, -0.01, lower_is_better=False) == "worse"
    assert st.verdict(math.nan, math.nan) == "no difference shown"


def test_claim_verdict_three_cases():
    assert st.claim_verdict(13.0, 12.4, 15.3) == "consistent"
    assert st.claim_verdict(16.0, 12.4, 15.3) == "ours better"
    assert st.claim_verdict(10.0, 12.4, 15.3) == "ours worse"
    assert st.claim_verdict(0.95, 0.96, 0.98, lower_is_better=False) == "ours better"
    assert st.claim_verdict(0.99, 0.96, 0.98, lower_is_better=False) == "ours worse"
    with pytest.raises(ValueError, match="low"):
        st.claim_verdict(13.0, math.nan, 15.3)


def test_fmt_cases():
    assert st.fmt(13.84, 12.43, 15.26) == "13.8 (12.4-15.3)"
    assert st.fmt(-1.2, -2.3, -0.1) == "-1.2 (-2.3 to -0.1)"
    assert st.fmt(0.4, -0.5, 1.3) == "0.4 (-0.5 to 1.3)"
    assert st.fmt(13.84) == "13.8"
    assert st.fmt(0.912, 0.9, 0.93, digits=3) == "0.912 (0.900-0.930)"
    assert st.fmt(math.nan, 1.0, 2.0) == "n/a"
    assert st.fmt(-0.01, -0.04, 0.5) == "0.0 (0.0-0.5)"  # no "-0.0"
    assert st.fmt_interval({"value": 13.84, "low": 12.43, "high": 15.26}) == "13.8 (12.4-15.3)"


def test_across_seeds():
    s = st.across_seeds([1.0, 2.0, 3.0])
    assert s == {"n": 3, "mean": 2.0, "sd": 1.0, "min": 1.0, "max": 3.0}
    one = st.across_seeds([4.5])
    assert one["n"] == 1 and one["mean"] == 4.5 and math.isnan(one["sd"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: st.intervals([1.0, 2.0, 3.0], [1.0, 2.0]), r"same length \(3 vs 2\)"),
        (lambda: st.intervals([1.0, 2.0, 3.0], [1.0, np.nan, 3.0]), "pred contains 1 non-finite"),
        (lambda: st.intervals([1.0], [1.0]), "at least 2"),
        (lambda: st.resample_indices(1), "at least 2"),
        (lambda: st.intervals([1.0, 2.0], [1.0, 2.0], level=1.5), "level"),
        (lambda: st.paired([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], level=95), "level"),
        (lambda: st.paired([1.0, 2.0], [1.0, 2.0], [1.0, np.inf]), "pred_b contains"),
        (lambda: st.paired([1.0, 2.0], [1.0, 2.0], [1.0, 2.0], metric="mape"), "metric"),
        (lambda: st.resample_indices(10, 0), "n_resamples"),
        (lambda: st.across_seeds([]), "empty"),
    ],
)
def test_bad_inputs_are_refused_with_the_problem_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_keras_style_column_predictions_are_accepted():
    true, pred = noisy(n=30)
    flat = st.intervals(true, pred, n_resamples=200)
    assert st.intervals(true, pred[:, None], n_resamples=200) == flat
