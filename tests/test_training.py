"""Training that resumes after a kill; early stopping; learning-rate schedules; distribution
strategies; staged pretraining (Keras-2 accuracy); encoder weights carried from notebook 05 to 06."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from nblib.core import config, results, runtime
from nblib.experiments import paper2
from nblib.models import autoencoder, bonet
from nblib.train import averaging, fitting, pretraining


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
    fitting.compile_model(ref, cfg_a, loss="mse")
    full = fitting.fit(ref, train, val, cfg_a, verbose=0)

    cfg_b = _cfg(tmp_path / "b")
    m = _model()
    fitting.compile_model(m, cfg_b, loss="mse")
    original_fit = keras.Model.fit
    monkeypatch.setattr(
        keras.Model,
        "fit",
        lambda self, *a, **k: original_fit(
            self, *a, **{**k, "callbacks": [*k["callbacks"], _Kill(3)]}
        ),
    )
    with pytest.raises(KeyboardInterrupt):
        fitting.fit(m, train, val, cfg_b, verbose=0)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    assert len(pd.read_csv(cfg_b.run_dir / "history.csv")) == 3

    fresh = (
        _model()
    )  # a new process would start from scratch: new model, weights from the checkpoint
    fitting.compile_model(fresh, cfg_b, loss="mse")
    resumed = fitting.fit(fresh, train, val, cfg_b, verbose=0)
    assert resumed["epoch"].tolist() == full["epoch"].tolist() == [1, 2, 3, 4, 5, 6]
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-4)  # same optimizer state
    for a, b in zip(fresh.get_weights(), ref.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class _Capture(keras.callbacks.Callback):
    def __init__(self, seen):
        super().__init__()
        self.seen = seen

    def on_epoch_end(self, epoch, logs=None):
        self.seen[epoch + 1] = [np.array(w) for w in self.model.get_weights()]


def _bn_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, name="hidden"),
            keras.layers.BatchNormalization(name="bn"),
            keras.layers.Dense(1),
        ]
    )


def _fit_with(monkeypatch, model, train, val, cfg, *extra):
    original_fit = keras.Model.fit
    monkeypatch.setattr(
        keras.Model,
        "fit",
        lambda self, *a, **k: original_fit(
            self, *a, **{**k, "callbacks": [*k["callbacks"], *extra]}
        ),
    )
    try:
        return fitting.fit(model, train, val, cfg, verbose=0)
    finally:
        monkeypatch.setattr(keras.Model, "fit", original_fit)


def test_averaged_model_is_the_mean_of_the_last_epochs_with_its_own_batch_norm_statistics(
    tmp_path, monkeypatch, capsys
):
    train, val = _problem()
    cfg = _cfg(tmp_path / "a", average_epochs=3)
    m = _bn_model()
    fitting.compile_model(m, cfg, loss="mse")
    seen = {}
    h = _fit_with(monkeypatch, m, train, val, cfg, _Capture(seen))
    assert h.attrs["averaged_epochs"] == [4, 6]
    assert "average of the weights of epochs 4-6" in capsys.readouterr().out
    names = [v.path for v in m.weights]
    final = {n: np.array(v) for n, v in zip(names, m.weights, strict=True)}
    bn = m.get_layer("bn")
    for i, n in enumerate(names):
        if "moving" not in n:  # trainable weights: the plain mean of epochs 4, 5 and 6
            want = np.mean([seen[e][i] for e in (4, 5, 6)], axis=0)
            np.testing.assert_allclose(final[n], want, rtol=1e-5, atol=1e-6)
    # moving statistics: the mean over the training batches of the averaged model's batch statistics
    dense = m.get_layer("hidden")
    stats = [np.array(dense(x)) for x, _ in train]
    np.testing.assert_allclose(
        np.array(bn.moving_mean),
        np.mean([s.mean(axis=0) for s in stats], axis=0),
        rtol=1e-4,
        atol=1e-5,
    )
    np.testing.assert_allclose(
        np.array(bn.moving_variance),
        np.mean([s.var(axis=0) for s in stats], axis=0),
        rtol=1e-3,
        atol=1e-5,
    )
    assert bn.momentum == cfg.bn_momentum  # put back after the pass

    # killed inside the averaged epochs, resumed in a new model: the same averaged end
    cfg_b = _cfg(tmp_path / "b", average_epochs=3)
    b = _bn_model()
    fitting.compile_model(b, cfg_b, loss="mse")
    with pytest.raises(KeyboardInterrupt):
        _fit_with(monkeypatch, b, train, val, cfg_b, _Kill(5))
    fresh = _bn_model()
    fitting.compile_model(fresh, cfg_b, loss="mse")
    fitting.fit(fresh, train, val, cfg_b, verbose=0)
    for x, y in zip(fresh.get_weights(), m.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)
    assert [f.name for f in cfg_b.run_dir.glob("checkpoints/main/average-*")] == [
        "average-006.weights.npz"
    ]


def test_batch_norm_reestimation_averages_every_batch_and_a_shorter_last_one():
    rng = np.random.default_rng(3)
    x = rng.random((60, 8)).astype("float32")  # batches of 16, 16, 16 and 12
    feed = tf.data.Dataset.from_tensor_slices((x, x[:, 0])).batch(16)
    m = _bn_model()
    bn = m.get_layer("bn")
    assert averaging.reestimate_batch_norm(m, feed, 16) == 4
    hidden = [np.array(m.get_layer("hidden")(x[i : i + 16])) for i in range(0, 60, 16)]
    np.testing.assert_allclose(
        np.array(bn.moving_mean), np.mean([h.mean(axis=0) for h in hidden], axis=0), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.array(bn.moving_variance), np.mean([h.var(axis=0) for h in hidden], axis=0), rtol=1e-4
    )
    assert bn.momentum == 0.99  # put back after the pass
    assert averaging.reestimate_batch_norm(_model(), feed, 16) == 0  # nothing to re-estimate


def test_early_stopping_restores_the_best_weights(tmp_path):
    train, _ = _problem(0)
    _, val = _problem(
        1
    )  # another mapping: validation loss turns up as the model fits the training set
    cfg = _cfg(tmp_path, epochs=60, learning_rate=0.05, patience=3)
    m = _model()
    fitting.compile_model(m, cfg, loss="mse")
    h = fitting.fit(m, train, val, cfg, verbose=0)
    assert len(h) < 60 and h.attrs["stopped_early"]
    best = int(h.loc[h["val_loss"].idxmin(), "epoch"])
    assert h.attrs["best_epoch"] == best
    restored = m.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert restored == pytest.approx(h["val_loss"].min(), rel=1e-3)


def test_history_has_curves_of_paper1(tmp_path):
    train, val = _problem()
    cfg = _cfg(tmp_path, epochs=2)
    m = _model()
    fitting.compile_model(m, cfg, loss="msle")
    h = fitting.fit(m, train, val, cfg, verbose=0)
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
    lrs = [fitting.lr_at(cfg, e, 10) for e in range(10)]
    assert lrs[0] < lrs[1] < lrs[2] == pytest.approx(1e-3) and lrs[-1] < 2e-4


def test_strategy_choice():
    assert runtime.strategy_kind("auto", 0, None) == "default"
    assert runtime.strategy_kind("auto", 1, None) == "default"
    assert runtime.strategy_kind("auto", 2, None) == "mirrored"
    assert runtime.strategy_kind("auto", 8, '{"cluster": {}}') == "multiworker"
    assert runtime.strategy_kind("mirrored", 0, None) == "mirrored"


_TWO_CPUS = """
import json, sys, numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from nblib.core import config, runtime
from nblib.train import averaging, fitting
cfg = config.make("03_resnet50", "smoke", output_dir=sys.argv[1], strategy="mirrored", epochs=2)
strategy = runtime.setup(cfg)
with strategy.scope():
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4, activation="gelu"), keras.layers.Dense(1)])
    fitting.compile_model(m, cfg, loss="mse")
x = np.random.default_rng(0).random((32, 8)).astype("float32")
ds = tf.data.Dataset.from_tensor_slices((x, x.sum(1))).batch(8)
h = fitting.fit(m, ds, ds, cfg, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "epochs": len(h),
                  "finite": bool(np.isfinite(h["val_loss"]).all())}))
"""


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tmp_path):
    # Logical devices must be set before TensorFlow starts: a fresh interpreter.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run(
        [sys.executable, "-c", _TWO_CPUS, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res == {"replicas": 2, "epochs": 2, "finite": True}


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
    x = np.where(rng.random((n, size, size, 1)) > 0.7, 255, 0).astype("uint8")  # raw images in
    return tf.data.Dataset.from_tensor_slices((x, x.astype("float32") / 255.0)).batch(8)


def test_staged_pretraining_continues_and_resumes_after_a_kill(tmp_path, monkeypatch, capsys):
    ds = _images()
    cfg = _ae_cfg(tmp_path, [2, 1, 2])
    ae = autoencoder.build(image_size=32, width=0.125)
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

    ae2 = autoencoder.build(image_size=32, width=0.125)
    pretraining.compile_autoencoder(ae2, cfg)
    stages, history = pretraining.pretrain(cfg, ae2, ds, ds)
    assert stages["end_epoch"].tolist() == [2, 3, 5] and stages["epochs"].tolist() == [2, 1, 2]
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert pd.read_csv(cfg.run_dir / "history.csv")["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert {"accuracy", "psnr", "ssim", "val_psnr"} <= set(history.columns)
    # one progress line per epoch, counting to the last stage's end, with a time estimate
    progress = [line for line in capsys.readouterr().out.splitlines() if "[progress]" in line]
    assert [line.split(":")[0] for line in progress] == [
        f"[progress] autoencoder epoch {e}/5" for e in (1, 2, 3, 4, 5)
    ], progress
    assert all(", val_loss " in line and ", ETA " in line for line in progress)
    # Every stage done: a new call trains nothing, loads the final weights, returns the same.
    ae3 = autoencoder.build(image_size=32, width=0.125)
    pretraining.compile_autoencoder(ae3, cfg)
    stages3, history3 = pretraining.pretrain(cfg, ae3, ds, ds)
    pd.testing.assert_frame_equal(stages3, stages)
    pd.testing.assert_frame_equal(history3[["epoch", "loss"]], history[["epoch", "loss"]])
    for a, b in zip(ae3.get_weights(), ae2.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_encoder_weights_from_pretraining_load_into_ae_bonet(tmp_path):
    ae = autoencoder.build(image_size=32, width=0.125)
    encoder = autoencoder.encoder_of(ae)
    ae.compile("adam", "mse")
    x = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 1), dtype=np.uint8)
    ae.fit(x, x / 255.0, epochs=1, verbose=0)
    path = tmp_path / paper2.ENCODER_FILE
    with results.atomic_path(path) as tmp:
        encoder.save_weights(tmp)
    model = bonet.build(image_size=32, width=0.125, weights=path)
    fresh = bonet.build(image_size=32, width=0.125)
    assert (model.name, fresh.name) == ("ae_bonet", "ae_bonet_random_init")
    enc, fresh_enc = model.get_layer("encoder"), fresh.get_layer("encoder")
    kernel = enc.get_layer("enc1_conv").get_weights()[0]
    np.testing.assert_array_equal(kernel, encoder.get_layer("enc1_conv").get_weights()[0])
    assert not np.allclose(kernel, fresh_enc.get_layer("enc1_conv").get_weights()[0])
    bn = enc.get_layer("bottleneck_bn").get_weights()[2]  # moving mean, learnt in pretraining
    np.testing.assert_array_equal(bn, encoder.get_layer("bottleneck_bn").get_weights()[2])


def test_missing_encoder_names_the_file_and_notebook(tmp_path):
    with pytest.raises(
        FileNotFoundError, match=r"encoder\.weights\.h5.*05_autoencoder_pretraining"
    ):
        bonet.build(image_size=32, width=0.125, weights=tmp_path / "encoder.weights.h5")


def test_changed_settings_start_afresh_but_more_epochs_continue(tmp_path, capsys):
    train, val = _problem()
    cfg = _cfg(tmp_path, epochs=2)
    m = _model()
    fitting.compile_model(m, cfg, loss="mse")
    fitting.fit(m, train, val, cfg, verbose=0)
    more = fitting.fit(m, train, val, cfg, epochs=3, verbose=0)  # a larger total continues
    assert (
        more["epoch"].tolist() == [1, 2, 3]
        and "Continuing from the checkpoint of epoch 2" in capsys.readouterr().out
    )
    other = dataclasses.replace(cfg, learning_rate=0.002)
    m2 = _model()
    fitting.compile_model(m2, other, loss="mse")
    fresh = fitting.fit(m2, train, val, other, epochs=2, verbose=0)
    assert "starting this training afresh" in capsys.readouterr().out
    assert fresh["epoch"].tolist() == [1, 2] and fresh["lr"].iloc[0] == pytest.approx(0.002)


def _tiny_resnet_history(cfg, parts):
    from nblib.data import pipeline
    from nblib.models import resnet50

    strategy = runtime.setup(cfg)
    ds = {
        s: pipeline.make_dataset(p, 32, 8, training=(s == "train"), seed=cfg.seed)
        for s, p in parts.items()
    }
    with strategy.scope():
        m = resnet50.build(image_size=32, width=0.125, output_bias=120.0)
        fitting.compile_model(m, cfg, loss="msle")
    h = fitting.fit(m, ds["train"], ds["validation"], cfg, verbose=0)
    return h.drop(columns=["seconds"]), m.predict(ds["validation"], verbose=0)


@pytest.mark.slow
def test_same_seed_gives_identical_histories(tmp_path, tiny_dataset):
    from nblib.data import loading, splitting

    df = splitting.assign_split(loading.load_dataset(tiny_dataset), "official", 0)
    parts = {s: df[df["split"] == s].reset_index(drop=True) for s in ("train", "validation")}
    runs = [
        _tiny_resnet_history(_cfg(tmp_path / f"run{i}", epochs=2, learning_rate=1e-3), parts)
        for i in range(2)
    ]
    (h1, p1), (h2, p2) = runs
    assert len(h1) == 2
    pd.testing.assert_frame_equal(h1, h2, check_exact=True)  # flips, order, kernels: all seeded
    np.testing.assert_array_equal(p1, p2)
