"""nblib.train.calibration: the bias correction removes a known regression to the mean, and the
conformal intervals reach their nominal coverage on data they never saw."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nblib.train import calibration


def _compressed(n: int, rng, slope: float = 0.8, noise_at_0: float = 4.0, growth: float = 0.06):
    """True ages, and predictions pulled toward the mean (``pred = 26 + slope * true``) with
    noise growing with age: the shape of a bone-age regressor's errors."""
    true = rng.uniform(10, 220, n)
    male = rng.random(n) < 0.5
    pred = 26 + slope * true + rng.normal(0, noise_at_0 + growth * true)
    return pred, true, male


def test_bias_correction_removes_a_known_compression():
    rng = np.random.default_rng(0)
    pred, true, male = _compressed(4000, rng)
    cal = calibration.fit(pred, true, male, level=0.9)
    a, b = cal.bias["M"]
    assert b == pytest.approx(0.8, abs=0.02) and a == pytest.approx(26, abs=2.5)
    vp, vt, vm = _compressed(4000, rng)
    before = vp - vt
    after = cal.correct(vp, vm) - vt
    young, old = vt < 60, vt > 180
    assert before[young].mean() > 10 and before[old].mean() < -10  # toward the mean
    assert abs(after[young].mean()) < 3 and abs(after[old].mean()) < 3


@pytest.mark.parametrize("level", [0.8, 0.9, 0.95])
def test_conformal_intervals_reach_their_nominal_coverage(level):
    rng = np.random.default_rng(1)
    coverages = []
    for _ in range(20):  # coverage is a guarantee on average over calibration draws
        cal = calibration.fit(*_compressed(600, rng), level=level)
        pred, true, male = _compressed(2000, rng)
        coverages.append(calibration.coverage(cal, pred, true, male)["coverage"])
    assert np.mean(coverages) == pytest.approx(level, abs=0.015)
    assert min(coverages) > level - 0.06


def test_intervals_widen_where_errors_are_larger():
    rng = np.random.default_rng(2)
    cal = calibration.fit(*_compressed(3000, rng), level=0.9)
    low, high = cal.interval(np.array([30.0, 200.0]))
    assert (high - low)[1] > 1.5 * (high - low)[0]


def test_conformal_quantile_by_hand():
    scores = np.arange(1, 10, dtype=float)  # n = 9
    assert calibration.conformal_quantile(scores, 0.8) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert calibration.conformal_quantile(scores, 0.95) == float("inf")  # ceil(9.5) = 10 > 9


def test_coverage_interval_and_verdict_by_hand():
    # Wilson (1927) for 164 of 200 at 95%: centre (0.82 + z^2/400) / (1 + z^2/200), by hand
    z = 1.959963984540054
    centre = (0.82 + z * z / 400) / (1 + z * z / 200)
    half = z * (0.82 * 0.18 / 200 + z * z / 160000) ** 0.5 / (1 + z * z / 200)
    low, high = calibration.coverage_interval(164, 200)
    assert low == pytest.approx(centre - half) and high == pytest.approx(centre + half)
    assert (round(low, 3), round(high, 3)) == (0.761, 0.867)
    assert calibration.coverage_interval(10, 10)[1] == 1.0  # never beyond 1
    assert calibration.verdict(0.9, low, high) == "below"
    assert calibration.verdict(0.9, 0.88, 0.93) == "holds"
    assert calibration.verdict(0.9, 0.91, 0.97) == "above"
    with pytest.raises(ValueError, match="hits <= n"):
        calibration.coverage_interval(11, 10)


def test_cross_validated_coverage_holds_where_a_shifted_test_set_falls_below():
    rng = np.random.default_rng(7)
    shares = []
    for seed in range(6):  # nominal on average over datasets, each within its sampling noise
        pred, true, male = _compressed(1500, rng)
        cv = calibration.cross_validated(pred, true, male, level=0.9, folds=5, seed=seed)
        assert cv["n"] == 1500 and cv["folds"] == 5 and abs(cv["coverage"] - 0.9) < 0.03
        assert cv["coverage_low"] < cv["coverage"] < cv["coverage_high"]
        shares.append(cv["coverage"])
    assert np.mean(shares) == pytest.approx(0.9, abs=0.012)
    # Test images whose errors are a third larger than validation's: the same calibration,
    # fitted on all of validation, covers fewer of them, and the verdict says so.
    cal = calibration.fit(pred, true, male, level=0.9)
    tp, tt, tm = _compressed(1500, rng)
    shifted = tt - (tp - 26 - 0.8 * tt) / 0.8 * 0.35  # each error grown by about a third
    on_test = calibration.coverage(cal, tp, shifted, tm)
    assert on_test["verdict"] == "below" and on_test["coverage"] < cv["coverage"] - 0.03
    with pytest.raises(ValueError, match="at least 20 validation images"):
        calibration.cross_validated(pred[:19], true[:19], male[:19])


def test_one_sex_too_rare_gives_one_pooled_correction_and_the_record_round_trips():
    rng = np.random.default_rng(3)
    pred, true, _ = _compressed(400, rng)
    male = np.zeros(400, bool)
    male[:10] = True
    cal = calibration.fit(pred, true, male)
    assert set(cal.bias) == {"all"}
    again = calibration.Calibration.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert np.allclose(again.correct(pred[:5], male[:5]), cal.correct(pred[:5], male[:5]))


def test_a_model_that_learnt_nothing_is_refused_plainly():
    rng = np.random.default_rng(4)
    true = rng.uniform(10, 220, 200)
    with pytest.raises(ValueError, match="has not learnt enough"):
        calibration.fit(np.full(200, 120.0) + rng.normal(0, 1, 200), true, rng.random(200) < 0.5)
    with pytest.raises(ValueError, match="level"):
        calibration.fit(true, true, true > 100, level=1.0)


def _split_parts(rng, n_val=400, n_test=300):
    import pandas as pd

    def part(n, split):
        return pd.DataFrame(
            {
                "id": [f"{split}{i}" for i in range(n)],
                "boneage": rng.uniform(10, 220, n),
                "male": rng.random(n) < 0.5,
                "split": split,
            }
        )

    return {
        "train": part(50, "train"),
        "validation": part(n_val, "validation"),
        "test": part(n_test, "test"),
    }


def test_notebook_07_fits_on_validation_only_and_measures_on_test(tmp_path):
    from nblib.core import config
    from nblib.experiments import beyond

    rng = np.random.default_rng(5)
    parts = _split_parts(rng)

    def compressed(df):
        t = df["boneage"].to_numpy()
        return 26 + 0.8 * t + rng.normal(0, 4 + 0.06 * t)

    ens = beyond.Ensemble(
        ["x"], np.ones(1), compressed(parts["validation"]), compressed(parts["test"]), np.ones(300)
    )
    cfg = config.make("07_beyond", "smoke", output_dir=tmp_path)
    cal = beyond.calibrate(cfg, parts, ens)
    assert cal.fit is not None and 0.8 < cal.test["coverage"] <= 1.0
    assert "of true ages inside the 90% intervals" in beyond.describe_calibration(cal)
    cv = cal.test["validation_cv"]  # the calibration on validation folds it never saw
    assert cv["n"] == len(parts["validation"]) and cv["verdict"] in {"holds", "below", "above"}
    assert "measured on the one left out" in beyond.describe_calibration(cal)
    worst = cal.test["worst_band_bias"]
    assert worst["before"]["bias"] > 10 and not worst["before"]["within_limit"]
    assert abs(worst["after"]["bias"]) < abs(worst["before"]["bias"])
    assert "Largest mean error of an age band" in beyond.describe_calibration(cal)
    bands = cal.bands.set_index(["model", "group"])
    young = [g for g in cal.bands["group"].unique() if g.startswith("0")][0]
    assert bands.loc[("ensemble", young), "bias"] > 10
    assert abs(bands.loc[("ensemble, bias-corrected", young), "bias"]) < 8
    # the test rows never enter the fit: other test labels, the same correction and intervals
    moved = {**parts, "test": parts["test"].assign(boneage=parts["test"]["boneage"] + 50)}
    assert beyond.calibrate(cfg, moved, ens).fit == cal.fit


def test_worst_band_bias_judges_age_bands_of_enough_images_only():
    from nblib.experiments import beyond
    from nblib.report import tables

    small, young, mid = tables.AGE_BANDS[:3]
    sex_row = "male"
    rows = []
    for model, biases in (
        ("ensemble", (40.0, 8.0, -6.0, 30.0)),
        ("ensemble, bias-corrected", (30.0, 2.0, -4.0, 25.0)),
    ):
        for group, n, bias in zip(
            (small, young, mid, sex_row), (10, 60, 80, 150), biases, strict=True
        ):
            rows.append({"model": model, "group": group, "n": n, "MAE": abs(bias), "bias": bias})
    worst = beyond.worst_band_bias(pd.DataFrame(rows))
    # the 10-image band and the sex row are not age bands of at least 15 images
    assert worst["before"] == {"band": young, "bias": 8.0, "within_limit": False}
    assert worst["after"] == {"band": mid, "bias": -4.0, "within_limit": True}


def test_the_check_command_judges_a_finished_07_on_validation_folds_and_saved_intervals(
    tmp_path, capsys
):
    from nblib.core import results

    rng = np.random.default_rng(11)
    pred, true, male = _compressed(400, rng)
    results.write_json(tmp_path / "config.json", {"seed": 3, "interval_level": 0.8})
    val = pd.DataFrame({"id": range(400), "true": true, "predicted": pred, "male": male})
    results.write_csv(tmp_path / "validation_predictions.csv", val)
    # Ten test rows, saved intervals that hold exactly 7 of them, and a training row ignored.
    t = np.arange(11, dtype=float) * 10 + 50
    low = np.where(np.arange(11) < 7, t - 5, t + 1)
    split = ["test"] * 10 + ["train"]
    saved = pd.DataFrame(
        {"true": t, "interval_low": low, "interval_high": low + 10, "split": split}
    )
    results.write_csv(tmp_path / "predictions.csv", saved)
    out = calibration.check(tmp_path)
    assert out["test"]["coverage"] == pytest.approx(0.7) and out["test"]["n"] == 10
    assert out["test"]["median_width"] == pytest.approx(10.0)
    lo, hi = calibration.coverage_interval(7, 10)
    assert (out["test"]["coverage_low"], out["test"]["coverage_high"]) == (lo, hi)
    expect = calibration.cross_validated(pred, true, male, level=0.8, seed=3)
    assert out["validation_cv"] == expect  # the run's level and seed
    assert calibration.main([str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "test, the saved intervals: 70.0%" in said and "of 10 inside the 80% intervals" in said
    assert calibration.main([str(tmp_path / "missing")]) == 2
    assert "config.json" in capsys.readouterr().err
