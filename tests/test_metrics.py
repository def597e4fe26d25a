"""Regression metrics against hand-computed values; the Keras per-epoch metrics agree with the NumPy
ones; test-set evaluation and the mean predictor."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from nblib.train import evaluation, metrics

T = np.array([10.0, 20.0, 30.0, 40.0])
P = np.array([12.0, 18.0, 33.0, 40.0])


def test_regression_metrics_by_hand():
    m = metrics.regression(T, P)
    # errors 2, -2, 3, 0: MAE 7/4, MSE 17/4, MAPE mean(20%, 10%, 10%, 0%) = 10%, SS_tot 500
    assert m["mae"] == pytest.approx(1.75)
    assert m["mse"] == pytest.approx(4.25)
    assert m["rmse"] == pytest.approx(np.sqrt(4.25))
    assert m["mape"] == pytest.approx(10.0)
    assert m["r2"] == pytest.approx(1 - 17 / 500)
    msle = np.mean((np.log(13 / 11) ** 2, np.log(19 / 21) ** 2, np.log(34 / 31) ** 2, 0.0))
    assert m["msle"] == pytest.approx(msle)


def test_perfect_and_constant_predictions():
    perfect = metrics.regression(T, T)
    assert perfect["mae"] == 0 and perfect["r2"] == 1 and perfect["msle"] == 0
    # predicting the mean of y_true gives R^2 = 0 exactly
    assert metrics.regression(T, np.full(4, T.mean()))["r2"] == pytest.approx(0.0)
    # negative predictions count as 0 in MSLE (Keras clips them the same way)
    assert metrics.regression([0.0], [-5.0])["msle"] == 0.0


def test_bad_inputs_are_refused_with_the_lengths():
    with pytest.raises(ValueError, match=r"same length \(4 vs 3\)"):
        metrics.regression(T, P[:3])
    with pytest.raises(ValueError, match="non-empty"):
        metrics.regression([], [])


def test_keras_metrics_match_numpy_over_several_batches():
    ms = {m.name: m for m in metrics.keras_regression_metrics()}
    assert set(ms) == {"mae", "rmse", "mape", "r2"}
    for sl in (slice(0, 1), slice(1, 3), slice(3, 4)):  # uneven batches, predictions as [B, 1]
        for m in ms.values():
            m.update_state(T[sl].astype("float32"), P[sl, None].astype("float32"))
    ref = metrics.regression(T, P)
    for name, m in ms.items():
        assert float(m.result()) == pytest.approx(ref[name], rel=1e-5), name


def test_keras_loss_msle_matches_numpy():
    keras_msle = float(keras.losses.MeanSquaredLogarithmicError()(T, P))
    assert keras_msle == pytest.approx(metrics.regression(T, P)["msle"], rel=1e-5)


def test_r2_metric_survives_a_save_and_load(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("adam", "mse", metrics=metrics.keras_regression_metrics())
    x = np.ones((4, 2), "float32")
    model.fit(x, T.astype("float32"), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert "r2" in loaded.evaluate(x, T.astype("float32"), verbose=0, return_dict=True)


def _table(ages, male):
    n = len(ages)
    return pd.DataFrame(
        {
            "id": [f"img{i}" for i in range(n)],
            "path": [f"/x/img{i}.png" for i in range(n)],
            "boneage": np.asarray(ages, float),
            "male": np.asarray(male, bool),
            "split": "test",
        }
    )


def test_mean_predictor_predicts_the_training_mean():
    train = _table([100.0, 140.0], [True, False])  # mean 120
    test = _table([60.0, 120.0, 180.0], [True, True, False])
    m = evaluation.mean_predictor(train, test)
    assert m["mae"] == pytest.approx(40.0)  # |120-60|, 0, |120-180| -> 120/3
    assert m["rmse"] == pytest.approx(np.sqrt(7200 / 3))
    assert m["r2"] == pytest.approx(0.0)  # the test mean is 120 too
    assert m["loss"] == pytest.approx(m["msle"])
    assert evaluation.mean_predictor(train, test, loss="mse")["loss"] == pytest.approx(2400.0)


def test_evaluate_returns_predictions_in_table_order():
    test = _table([30.0, 90.0, 150.0], [True, False, True])
    x = np.array([[1.0], [3.0], [5.0]], "float32")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[30.0]]), np.array([0.0])])  # predicts 30 x
    ds = tf.data.Dataset.from_tensor_slices((x, test["boneage"].to_numpy("float32"))).batch(2)
    written, m = evaluation.evaluate(model, test, ds)
    assert list(written.columns) == ["id", "true", "predicted", "male", "split"]
    assert written["id"].tolist() == ["img0", "img1", "img2"]
    np.testing.assert_allclose(written["predicted"], [30.0, 90.0, 150.0], rtol=1e-6)
    assert m["mae"] == pytest.approx(0.0, abs=1e-4) and m["loss"] == pytest.approx(0, abs=1e-9)
    with pytest.raises(ValueError, match="3 predictions for 2 images"):
        evaluation.predict(model, test.iloc[:2], ds)
    # score: the same evaluation beside the mean predictor of the training split, MSE as the loss
    scores = evaluation.score(
        model, {"train": _table([100.0, 140.0], [True, False]), "test": test}, {"test": ds}, "mse"
    )
    pd.testing.assert_frame_equal(scores.predictions, written)
    assert scores.test["loss"] == pytest.approx(scores.test["mse"])
    # training mean 120 against 30, 90, 150: errors 90, 30, 30
    assert scores.mean["mae"] == pytest.approx(50.0) and scores.mean["loss"] == pytest.approx(3300)
