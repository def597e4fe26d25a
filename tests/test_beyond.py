"""Notebook 07's library: the ladder, the two-input model, the robust loss, the ensemble weights,
the decode-once inputs and the (image, sex) feed."""

from __future__ import annotations

import dataclasses

import cv2
import keras
import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.data import pipeline, preprocess
from nblib.experiments import beyond
from nblib.models import beyond_net


def test_ladder_is_cumulative_and_refuses_unknown_rungs():
    rungs = beyond.ladder()
    assert [k for k, _, _ in rungs] == [k for k, _, _ in beyond.LADDER]
    first, last = rungs[0][2], rungs[-1][2]
    assert first == beyond.Recipe()
    assert last == beyond.Recipe(sex=True, contrast="clahe", crop="hand", augment=True, robust=True)
    for (_, _, a), (_, _, b) in zip(rungs, rungs[1:], strict=False):  # one ingredient at a time
        da, db = a.__dict__, b.__dict__
        assert sum(da[k] != db[k] for k in da) == 1
    only = beyond.ladder(("crop",))
    assert len(only) == 1 and only[0][2].contrast == "clahe" and only[0][2].sex
    # a lighter ladder's rung names what the rungs left out before it added
    some = {k: label for k, label, _ in beyond.ladder(("base", "sex", "crop"))}
    assert "CLAHE" in some["crop"] and "crop to the hand" in some["crop"]
    assert "CLAHE" not in some["sex"]
    with pytest.raises(ValueError, match="unknown cropp"):
        beyond.ladder(("cropp",))


@pytest.mark.parametrize("backbone", ["resnet18", "resnet50"])
def test_robust_model_answers_in_months_and_takes_sex(backbone):
    keras.utils.set_random_seed(0)
    recipe = beyond.Recipe(sex=True, augment=True, robust=True)
    model = beyond_net.build(recipe, 64, 0.125, mean=120.0, sd=40.0, name="t", backbone=backbone)
    assert [t.name for t in model.inputs] == ["image", "sex"]
    z = model.get_layer("z")
    z.set_weights([np.zeros_like(w) for w in z.get_weights()])  # z = 0 -> the training mean
    x = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 1), dtype=np.uint8)
    out = model.predict([x, np.array([[1.0], [0.0], [1.0]], np.float32)], verbose=0)
    np.testing.assert_allclose(out.ravel(), 120.0, atol=1e-4)
    z.set_weights([np.zeros_like(z.get_weights()[0]), np.array([0.5], np.float32)])
    out = model.predict([x, np.zeros((3, 1), np.float32)], verbose=0)
    np.testing.assert_allclose(out.ravel(), 140.0, atol=1e-3)  # mean + sd * z


def test_standardized_huber_is_huber_on_the_z_scale():
    loss = beyond_net.standardized_huber(100.0, 20.0)
    y = np.array([100.0, 130.0, 60.0], np.float32)
    p = np.array([[110.0], [130.0], [100.0]], np.float32)  # z errors 0.5, 0, 2
    got = float(keras.ops.convert_to_numpy(loss(y, p)))
    want = np.mean([0.5 * 0.5**2, 0.0, 1.0 * (2.0 - 0.5)])  # quadratic below 1 SD, linear above
    assert got == pytest.approx(want, rel=1e-5)


def test_ensemble_weights_recover_the_mixture_and_stay_non_negative():
    rng = np.random.default_rng(1)
    truth = rng.uniform(0, 200, 300)
    good = truth + rng.normal(0, 5, 300)
    noisy = truth + rng.normal(0, 40, 300)
    anti = 200 - truth  # anticorrelated: must get no weight, not a negative one
    w = beyond.nonneg_weights(np.stack([good, noisy, anti], 1), truth)
    assert w.sum() == pytest.approx(1.0)
    assert (w >= 0).all() and w[0] > 0.9 and w[2] < 0.02


def _radiographs(tmp_path, n=4):
    rows = []
    for i in range(n):
        img = np.zeros((120, 90), np.uint8)
        cv2.ellipse(img, (40 + 3 * i, 70), (22, 35), 0, 0, 360, 200, -1)  # a bright "hand"
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), img)
        rows.append({"id": i, "path": str(path), "boneage": 50.0 + i, "male": bool(i % 2)})
    return pd.DataFrame(rows)


def test_inputs_decode_each_image_once_and_crop_to_the_hand(tmp_path, monkeypatch):
    df = _radiographs(tmp_path)
    calls = []
    read = pipeline.read_gray
    monkeypatch.setattr(pipeline, "read_gray", lambda p: calls.append(p) or read(p))
    variants = {
        "plain": preprocess.Preprocessing(size=32),
        "hand": preprocess.Preprocessing(size=32, crop="hand", contrast="clahe"),
    }
    arrays, boxes = beyond.prepare_images(df, variants)
    assert sorted(calls) == sorted(df["path"])  # one decode per image for both variants
    assert arrays["plain"].shape == arrays["hand"].shape == (4, 32, 32)
    np.testing.assert_array_equal(arrays["plain"][0], pipeline.decode(df["path"][0], 32))
    assert len(boxes) == 4 and boxes["found"].all()
    assert ((boxes["x1"] - boxes["x0"]) < 90).all()  # the crop is smaller than the image


@pytest.mark.parametrize("feed", ["tf.data", "pydataset"])
def test_feed_pairs_each_image_with_its_sex(feed):
    n = 10
    images = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 8, 8), np.uint8)
    df = pd.DataFrame({"path": [f"x{i}" for i in range(n)], "boneage": np.arange(n) * 10.0})
    sex = (np.arange(n) % 2).astype(np.float32)
    ds = pipeline.make_dataset(df, 8, 4, training=True, seed=3, images=images, sex=sex, feed=feed)
    seen = 0
    for i in range(len(ds)) if feed == "pydataset" else range(1):
        batches = [ds[i]] if feed == "pydataset" else list(ds.as_numpy_iterator())
        for (x, s), y in batches:
            x, s, y = np.asarray(x), np.asarray(s), np.asarray(y)
            assert x.shape[1:] == (8, 8, 1) and s.shape[1:] == (1,)
            rows = x[:, 0, 0, 0].astype(int)
            np.testing.assert_array_equal(s[:, 0], rows % 2)  # sex follows its image
            np.testing.assert_array_equal(y, rows * 10.0)
            seen += len(rows)
    assert seen == n
    with pytest.raises(ValueError, match="uint8"):
        pipeline.make_dataset(df, 8, 4, training=False, images=images.astype(np.float32))


def test_long_rung_trains_the_whole_recipe_for_long_epochs(tmp_path):
    rungs = beyond.ladder((), long_epochs=5, epochs=2)
    key, label, recipe = rungs[-1]
    assert key == "long" and label == "+ 5 epochs instead of 2"
    assert recipe == dataclasses.replace(rungs[-2][2], long=True)  # one ingredient more
    assert [k for k, _, _ in beyond.ladder()] == [k for k, _, _ in beyond.LADDER]  # off by default
    with pytest.raises(ValueError, match="long needs long_epochs"):
        beyond.ladder(("long",))
    with pytest.raises(config.ConfigError, match="long rung needs long_epochs"):
        config.make("07_beyond", "smoke", rungs=["long"], long_epochs=0)

    cfg = config.make(
        "07_beyond",
        "smoke",
        output_dir=tmp_path,
        image_size=32,
        width=0.125,
        batch_size=4,
        epochs=1,
        long_epochs=2,
        rungs=["long"],
        average_epochs=0,
    )
    rng = np.random.default_rng(0)
    parts = {
        s: pd.DataFrame(
            {
                "path": [f"{s}{i}" for i in range(n)],
                "boneage": rng.uniform(20, 200, n),
                "male": np.arange(n) % 2 == 0,
            }
        )
        for s, n in (("train", 8), ("validation", 4), ("test", 4))
    }
    name = "input_" + beyond.recipe_variant(recipe)
    images = {
        name: {s: rng.integers(0, 255, (len(p), 32, 32), dtype=np.uint8) for s, p in parts.items()}
    }
    sex = {s: p["male"].to_numpy(np.float32) for s, p in parts.items()}
    rung = beyond.train_rung(cfg, key, label, recipe, images, parts, sex)
    assert list(rung.history["epoch"]) == [1, 2]  # long_epochs, not epochs
    assert rung.test.shape == (len(beyond.FLIPS), 4)
