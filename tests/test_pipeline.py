"""The input pipeline: decode once, gray in [0, 1], flips in training only, clear errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib import config, data, pipeline


@pytest.fixture
def table(tmp_path):
    """Six PNGs: 8-bit gray of two sizes, 16-bit, RGB, RGBA."""
    rng = np.random.default_rng(0)
    specs = [
        ((50, 40), np.uint8),
        ((70, 30), np.uint8),
        ((50, 40), np.uint16),
        ((50, 40, 3), np.uint8),
        ((50, 40, 4), np.uint8),
        ((64, 64), np.uint8),
    ]
    rows = []
    for i, (shape, dtype) in enumerate(specs):
        img = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
        if len(shape) == 3:
            img[..., :3] = img[..., :1]  # a gray picture stored as colour
        if len(shape) == 3 and shape[2] == 4:
            img[..., 3] = 255
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), img)
        rows.append(
            {
                "id": str(i),
                "path": str(path),
                "boneage": 10.0 * (i + 1),
                "male": True,
                "split": "train",
            }
        )
    pipeline.clear_cache()
    return pd.DataFrame(rows)


def test_shapes_types_and_range(table):
    x, y = next(iter(pipeline.make_dataset(table, 32, 4, training=False)))
    assert x.shape == (4, 32, 32, 3) and x.dtype.name == "float32" and y.shape == (4,)
    assert 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert np.allclose(x.numpy()[..., 0], x.numpy()[..., 2])  # gray tiled to three channels
    np.testing.assert_allclose(y.numpy(), [10, 20, 30, 40])


def test_colour_and_16bit_become_8bit_gray(table):
    imgs = pipeline.load_images(table, 24)
    assert imgs.dtype == np.uint8 and imgs.shape == (6, 24, 24)
    raw16 = cv2.imread(table["path"][2], cv2.IMREAD_UNCHANGED)
    expected = cv2.resize(
        (raw16 / 257.0).round().astype(np.uint8), (24, 24), interpolation=cv2.INTER_AREA
    )
    np.testing.assert_array_equal(imgs[2], expected)
    gray = cv2.imread(table["path"][3], cv2.IMREAD_GRAYSCALE)
    assert (
        np.abs(imgs[3].astype(int) - cv2.resize(gray, (24, 24), interpolation=cv2.INTER_AREA)).max()
        <= 1
    )


def test_eval_batches_equal_the_cache_and_training_flips(table):
    cached = pipeline.load_images(table, 32).astype(np.float32) / 255.0
    x = np.concatenate([b[0].numpy() for b in pipeline.make_dataset(table, 32, 4, training=False)])
    np.testing.assert_allclose(x[..., 0], cached, atol=1e-6)
    seen = set()
    ds = pipeline.make_dataset(table.iloc[[5]].loc[[5] * 16], 32, 16, training=True, seed=1)
    for img in next(iter(ds))[0].numpy()[..., 0]:
        for name, ref in (
            ("none", cached[5]),
            ("lr", cached[5][:, ::-1]),
            ("ud", cached[5][::-1]),
            ("both", cached[5][::-1, ::-1]),
        ):
            if np.allclose(img, ref, atol=1e-6):
                seen.add(name)
    assert seen == {"none", "lr", "ud", "both"}


def test_each_image_decoded_once(table):
    before = pipeline.DECODES["count"]
    ds = pipeline.make_dataset(table, 28, 3, training=True)
    for _ in range(2):
        for _ in ds:
            pass
    pipeline.make_dataset(table, 28, 3, training=False)
    pipeline.make_dataset(table.iloc[:3], 28, 3, training=False)  # a subset reuses the decoded rows
    assert pipeline.DECODES["count"] - before == len(table)


def test_training_order_is_seeded(table):
    def ys(seed):
        return np.concatenate(
            [b[1].numpy() for b in pipeline.make_dataset(table, 16, 2, True, seed=seed)]
        )

    assert ys(3).tolist() == ys(3).tolist()
    assert sorted(ys(3)) == sorted(table["boneage"])


def test_autoencoder_target(table):
    x, t = next(
        iter(pipeline.make_dataset(table, 16, 2, training=False, target="image", channels=1))
    )
    assert x.shape == (2, 16, 16, 1)
    np.testing.assert_array_equal(x.numpy(), t.numpy())


def test_unreadable_image_is_named(table, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    t = pd.concat([table, table.iloc[[0]].assign(id="b", path=str(bad))], ignore_index=True)
    with pytest.raises(ValueError, match="broken.png"):
        pipeline.load_images(t, 16)


def test_disk_cache_round_trip(table, tmp_path):
    first = pipeline.load_images(table, 20, cache_dir=tmp_path / "cache")
    pipeline.clear_cache()
    before = pipeline.DECODES["count"]
    again = pipeline.load_images(table, 20, cache_dir=tmp_path / "cache")
    assert pipeline.DECODES["count"] == before
    np.testing.assert_array_equal(first, again)


def test_benchmark_command_prints_the_ratio(tiny_dataset):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nblib.benchmark",
            "pipeline",
            "--data",
            str(tiny_dataset),
            "--n",
            "24",
            "--image-size",
            "32",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.ROOT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ratio epoch 2 / naive:" in out.stdout and "epoch 1 (decode + cache)" in out.stdout


def test_real_sample_through_the_pipeline(shared_dir):
    df = data.load_dataset(shared_dir / "data" / "rsna-sample").head(64)
    x, y = next(iter(pipeline.make_dataset(df, 64, 64, training=False)))
    assert x.shape == (64, 64, 64, 3) and float(x.numpy().std()) > 0.05
