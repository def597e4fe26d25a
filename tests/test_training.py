"""Metrics against hand-computed values; training that resumes after a kill; early stopping;
staged pretraining; encoder weights carried from notebook 05 to 06."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from nblib import config, metrics, paper2, pretraining, results, training
from nblib.models import autoencoder, bonet


def test_regression_metrics_by_hand():
    m = metrics.regression([10, 20, 30, 40], [12, 18, 33, 40])
    # errors 2, -2, 3, 0: MAE 7/4, MSE 17/4, MAPE mean(20%, 10%, 10%, 0%), SS_tot 500
    assert m["mae"] == pytest.approx(1.75) and m["mse"] == pytest.approx(4.25)
    assert m["rmse"] == pytest.approx(np.sqrt(4.25)) and m["mape"] == pytest.approx(10.0)
    assert m["r2"] == pytest.approx(1 - 17 / 500)
    expected = np.mean((np.log1p([12, 18, 33, 40]) - np.log1p([10, 20, 30, 40])) ** 2)
    assert m["msle"] == pytest.approx(expected)


def test_keras_r2_matches_numpy_over_batches():
    t, p = np.array([10.0, 20, 30, 40]), np.array([12.0, 18, 33, 40])
    r2 = metrics.R2()
    r2.update_state(t[:2], p[:2, None])
    r2.update_state(t[2:], p[2:, None])
    assert float(r2.result()) == pytest.approx(1 - 17 / 500, rel=1e-5)


def test_keras_two_accuracy_by_hand():
    # Keras 2 binary accuracy: y_true compared with (y_pred > 0.5), pixel by pixel.
    y_true = np.array([[0.0, 1.0, 0.5, 0.0]], "float32").reshape(1, 2, 2, 1)
    y_pred = np.array([[0.2, 0.9, 0.9, 0.7]], "float32").reshape(1, 2, 2, 1)
    # pixel 1: 0 == 0 yes; 2: 1 == 1 yes; 3: 0.5 == 1 no (a mid-grey pixel can never count); 4: 0 == 1 no
    acc = pretraining.KerasTwoAccuracy()
    acc.update_state(y_true, y_pred)
    assert float(acc.result()) == pytest.approx(0.5)


def _cfg(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), epochs=6, learning_rate=0.01, patience=0)
    base.update(kw)
    return config.make("03_resnet50", "smoke", **base)


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((64, 8)).astype("float32")
    y = (x @ rng.random(8) * 50 + 20).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    return ds, ds


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="gelu"), keras.layers.Dense(1)]
    )


class _Kill(keras.callbacks.Callback):
    def __init__(self, after):
        super().__init__()
        self.after = after

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.after:
            raise KeyboardInterrupt("killed")


def test_killed_training_resumes_to_the_same_end(tmp_path, monkeypatch):
    train, val = _problem()
    cfg_a = _cfg(tmp_path / "a")
    ref = _model()
    training.compile_model(ref, cfg_a, loss="mse")
    full = training.fit(ref, train, val, cfg_a, verbose=0)

    cfg_b = _cfg(tmp_path / "b")
    m = _model()
    training.compile_model(m, cfg_b, loss="mse")
    original_fit = keras.Model.fit
    monkeypatch.setattr(
        keras.Model,
        "fit",
        lambda self, *a, **k: original_fit(
            self, *a, **{**k, "callbacks": [*k["callbacks"], _Kill(3)]}
        ),
    )
    with pytest.raises(KeyboardInterrupt):
        training.fit(m, train, val, cfg_b, verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    assert len(pd.read_csv(cfg_b.run_dir / "history.csv")) == 3

    fresh = (
        _model()
    )  # a new process would start from scratch: new model, weights from the checkpoint
    training.compile_model(fresh, cfg_b, loss="mse")
    resumed = training.fit(fresh, train, val, cfg_b, verbose=0)
    assert resumed["epoch"].tolist() == full["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-4)  # same optimizer state
    for a, b in zip(fresh.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_early_stopping_restores_the_best_weights(tmp_path):
    train, _ = _problem(0)
    _, val = _problem(
        1
    )  # another mapping: validation loss turns up as the model fits the training set
    cfg = _cfg(tmp_path, epochs=60, learning_rate=0.05, patience=3)
    m = _model()
    training.compile_model(m, cfg, loss="mse")
    h = training.fit(m, train, val, cfg, verbose=0)
    assert len(h) < 60 and h.attrs["stopped_early"]
    best = int(h.loc[h["val_loss"].idxmin(), "epoch"])
    assert h.attrs["best_epoch"] == best
    restored = m.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(h["val_loss"].min(), rel=1e-3)


def test_history_has_curves_of_paper1(tmp_path):
    train, val = _problem()
    cfg = _cfg(tmp_path, epochs=2)
    m = _model()
    training.compile_model(m, cfg, loss="msle")
    h = training.fit(m, train, val, cfg, verbose=0)
    for col in (
        "loss",
        "val_loss",
        "rmse",
        "val_rmse",
        "mape",
        "val_mape",
        "r2",
        "val_r2",
        "mae",
        "lr",
        "seconds",
    ):
        assert col in h, col


def test_cosine_schedule_with_warmup(tmp_path):
    cfg = dataclasses.replace(
        _cfg(tmp_path), lr_schedule="cosine", warmup_epochs=2, learning_rate=1e-3
    )
    lrs = [training.lr_at(cfg, e, 10) for e in range(10)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3) and lrs[-1] < 2e-4


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    cfg = dataclasses.replace(_cfg(tmp_path), strategy="mirrored")
    strategy = training.setup(cfg)
    assert strategy.num_replicas_in_sync >= 1
    with strategy.scope():
        m = _model()
        training.compile_model(m, cfg, loss="mse")
    train, val = _problem()
    h = training.fit(m, train, val, cfg, epochs=1, verbose=0)
    assert len(h) == 1


def _ae_cfg(tmp_path, stages):
    return config.make(
        "05_autoencoder_pretraining",
        "smoke",
        output_dir=str(tmp_path),
        image_size=32,
        ae_stages=stages,
        learning_rate=0.01,
    )


def _images(n=16, size=32):
    rng = np.random.default_rng(0)
    x = (rng.random((n, size, size, 1)) > 0.7).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x)).batch(8)


def test_staged_pretraining_continues_and_resumes_after_a_kill(tmp_path, monkeypatch):
    ds = _images()
    cfg = _ae_cfg(tmp_path, [2, 1, 2])
    ae, _ = autoencoder.build(32, 0.125)
    pretraining.compile_autoencoder(ae, cfg)
    original_fit = keras.Model.fit
    monkeypatch.setattr(
        keras.Model,
        "fit",
        lambda self, *a, **k: original_fit(
            self, *a, **{**k, "callbacks": [*k["callbacks"], _Kill(4)]}
        ),
    )
    with pytest.raises(KeyboardInterrupt):
        pretraining.pretrain(cfg, ae, ds, ds)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    assert len(pd.read_csv(cfg.run_dir / "stages.csv")) == 2  # stages 1-2 done, killed in stage 3

    ae2, _ = autoencoder.build(32, 0.125)
    pretraining.compile_autoencoder(ae2, cfg)
    stages = pretraining.pretrain(cfg, ae2, ds, ds)
    assert stages["end_epoch"].tolist() == [2, 3, 5] and stages["epochs"].tolist() == [2, 1, 2]
    history = pd.read_csv(cfg.run_dir / "history.csv")
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert {"accuracy", "psnr", "ssim", "val_psnr"} <= set(history.columns)


def test_encoder_weights_from_pretraining_load_into_ae_bonet(tmp_path):
    ae, encoder = autoencoder.build(32, 0.125)
    ae.compile("adam", "mse")
    x = np.random.default_rng(1).random((8, 32, 32, 1)).astype("float32")
    ae.fit(x, x, epochs=1, verbose=0)
    path = tmp_path / paper2.ENCODER_FILE
    with results.atomic_path(path) as tmp:
        encoder.save_weights(tmp)
    model = bonet.from_pretrained(path, 32, 0.125)
    fresh = bonet.random_init(32, 0.125)
    kernel = model.get_layer("enc1_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, encoder.get_layer("enc1_conv").get_weights()[0])
    assert not np.allclose(kernel, fresh.get_layer("enc1_conv").get_weights()[0])
    bn = model.get_layer("bottleneck_bn").get_weights()[2]  # moving mean, learnt in pretraining
    np.testing.assert_array_equal(bn, encoder.get_layer("bottleneck_bn").get_weights()[2])


def test_missing_encoder_names_the_file_and_notebook(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"encoder\.weights\.h5.*05_autoencoder_pretraining"
    ):
        bonet.from_pretrained(tmp_path / "encoder.weights.h5", 32, 0.125)


def test_changed_settings_start_afresh_but_more_epochs_continue(tmp_path, capsys):
    train, val = _problem()
    cfg = _cfg(tmp_path, epochs=2)
    m = _model()
    training.compile_model(m, cfg, loss="mse")
    training.fit(m, train, val, cfg, verbose=0)
    more = training.fit(m, train, val, cfg, epochs=3, verbose=0)  # a larger total continues
    assert (
        more["epoch"].tolist() == [1, 2, 3]
        and "Continuing from the checkpoint of epoch 2" in capsys.readouterr().out
    )
    other = dataclasses.replace(cfg, learning_rate=0.002)
    m2 = _model()
    training.compile_model(m2, other, loss="mse")
    fresh = training.fit(m2, train, val, other, epochs=2, verbose=0)
    assert "starting this training afresh" in capsys.readouterr().out
    assert fresh["epoch"].tolist() == [1, 2] and fresh["lr"].iloc[0] == pytest.approx(0.002)
