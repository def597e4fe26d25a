"""The synthetic hand phantom: layout, determinism, maturation, and that a CNN can learn it."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib.data import loading, phantom, rsna


def test_layout_and_dialects(tiny_dataset):
    df = loading.load_dataset(tiny_dataset)  # all three tables parse and every image checks out
    assert df["split"].value_counts().to_dict() == {"train": 48, "validation": 12, "test": 12}
    header = {p.name: p.read_text().splitlines()[0] for p in tiny_dataset.glob("*.csv")}
    assert header["boneage-training-dataset.csv"] == "id,boneage,male"
    assert header["boneage-validation-dataset.csv"] == "Image ID,male,Bone Age (months)"
    assert header["boneage-test-dataset.csv"] == "Case ID,Sex,Ground truth bone age (months)"
    img = cv2.imread(df["path"][0], cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and img.ndim == 2 and 400 <= max(img.shape) <= 720


def test_same_seed_same_bytes(tmp_path):
    a = phantom.generate(tmp_path / "a", 6, 2, 2, seed=5, workers=1)
    b = phantom.generate(tmp_path / "b", 6, 2, 2, seed=5, workers=1)
    c = phantom.generate(tmp_path / "c", 6, 2, 2, seed=6, workers=1)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 14
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert (a / files[-1]).read_bytes() != (c / files[-1]).read_bytes()


def test_label_distribution_like_rsna():
    ages, male = phantom.sample_labels(20000, np.random.default_rng(0))
    assert abs(ages.mean() - 127) < 3 and abs(ages.std() - 41) < 3
    assert ages.min() >= 1 and ages.max() <= 228 and male.mean() == 0.54
    assert phantom.sample_labels(1000, np.random.default_rng(42))[1].sum() == 540


def test_maturation_follows_age_and_sex():
    """Older hands show more bone; a girl matures ahead of a boy of the same age."""

    def bone_fraction(age, male):
        img = phantom.render_hand(age, male, np.random.default_rng(1), size=(600, 450)).astype(
            float
        )
        return float((img > 200).mean())

    assert bone_fraction(24, True) < bone_fraction(96, True) < bone_fraction(200, True)
    assert phantom.skeletal_age(150, False) > phantom.skeletal_age(150, True)


def test_generation_is_fast():
    t = time.perf_counter()
    n = 60
    rng = np.random.default_rng(0)
    for _ in range(n):
        phantom.render_hand(120, True, rng)
    per_image = (time.perf_counter() - t) / n
    assert per_image < 0.2, f"{per_image:.3f} s per image: thousands would take minutes"


@pytest.mark.slow
def test_a_small_cnn_learns_age_from_phantoms(tmp_path):
    """Trained on 800 phantoms at 64 px, a small CNN halves the mean predictor's error on fresh ones."""
    import keras

    def arrays(folder):
        df = pd.concat([rsna.load_labels(p) for p in folder.glob("*.csv")], ignore_index=True)
        x = (
            np.stack(
                [
                    cv2.resize(
                        cv2.imread(p, cv2.IMREAD_GRAYSCALE), (64, 64), interpolation=cv2.INTER_AREA
                    )
                    for p in df["path"]
                ]
            )[..., None].astype("float32")
            / 255.0
        )
        return x, df["boneage"].to_numpy("float32")

    x, y = arrays(phantom.generate(tmp_path / "train", 800, 0, 0, seed=11, workers=1))
    xt, yt = arrays(phantom.generate(tmp_path / "fresh", 200, 0, 0, seed=12, workers=1))
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((64, 64, 1))]
        + [
            layer
            for f in (16, 32, 64, 64)
            for layer in (
                layers.Conv2D(f, 3, padding="same", activation="relu"),
                layers.BatchNormalization(momentum=0.9),
                layers.MaxPooling2D(),
            )
        ]
        + [
            layers.GlobalAveragePooling2D(),
            layers.Dense(32, activation="relu"),
            layers.Dense(1, bias_initializer=keras.initializers.Constant(float(y.mean()))),
        ]
    )
    epochs, steps = 15, len(x) // 32
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, epochs * steps, alpha=0.02)
    model.compile(keras.optimizers.Adam(schedule), "mae")
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0)
    mae = float(np.mean(np.abs(model.predict(xt, verbose=0).ravel() - yt)))
    mean_mae = float(np.mean(np.abs(y.mean() - yt)))
    print(f"CNN MAE {mae:.1f} months, mean predictor {mean_mae:.1f} ({mae / mean_mae:.2f}x)")
    assert mae <= 0.5 * mean_mae, f"CNN MAE {mae:.1f} vs mean predictor {mean_mae:.1f}"
