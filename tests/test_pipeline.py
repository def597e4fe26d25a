"""The input pipeline: decode once, gray in [0, 1], flips in training only, clear errors."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.data import loading, pipeline, splitting


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
    pipeline.CACHE.clear()
    return pd.DataFrame(rows)


def _batches(ds):
    return [tuple(np.asarray(t) for t in b) for b in ds]


@pytest.mark.parametrize("feed", ["tf.data", "pydataset"])
def test_shapes_types_and_range(table, feed):
    x, y = _batches(pipeline.make_dataset(table, 32, 4, training=False, feed=feed))[0]
    assert x.shape == (4, 32, 32, 1) and x.dtype == np.uint8 and y.shape == (4,)
    np.testing.assert_array_equal(x[..., 0], pipeline.load_images(table, 32)[:4])
    np.testing.assert_allclose(y, [10, 20, 30, 40])


@pytest.mark.parametrize("feed", ["tf.data", "pydataset"])
def test_each_feed_reorders_every_epoch_from_its_seed(table, feed):
    def two_epochs(seed):
        ds = pipeline.make_dataset(table, 16, 4, training=True, seed=seed, feed=feed)
        out = []
        for _ in range(2):
            if feed == "tf.data":
                out.append(np.concatenate([y for _, y in _batches(ds)]))
            else:
                out.append(np.concatenate([np.asarray(ds[i][1]) for i in range(len(ds))]))
                ds.on_epoch_end()
        return out

    a, b = two_epochs(5), two_epochs(5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)  # same seed, same orders
        assert sorted(x) == sorted(table["boneage"])  # every image once per epoch
    assert a[0].tolist() != a[1].tolist()  # a new order each epoch


def test_feeds_agree_outside_training(table):
    tfd = _batches(pipeline.make_dataset(table, 16, 4, training=False, feed="tf.data"))
    pyd = pipeline.make_dataset(table, 16, 4, training=False, feed="pydataset")
    for i, (x, y) in enumerate(tfd):
        np.testing.assert_array_equal(x, pyd[i][0])
        np.testing.assert_array_equal(y, pyd[i][1])


def test_resumed_feed_starts_at_its_epoch(table):
    ds = pipeline.make_dataset(table, 16, 6, training=True, seed=2, feed="pydataset")
    ds.on_epoch_end()
    ds.on_epoch_end()
    third = np.asarray(ds[0][1])
    resumed = pipeline.make_dataset(table, 16, 6, training=True, seed=2, feed="pydataset")
    resumed.set_epoch(2)
    np.testing.assert_array_equal(np.asarray(resumed[0][1]), third)


def _flips_seen(table, flips) -> tuple[set[str], np.ndarray, np.ndarray]:
    """Which flips a model front with ``flips`` draws for 64 copies of one image in training,
    with its inference output and the image scaled to [0, 1]."""
    import keras

    from nblib.models import layers

    cached = pipeline.load_images(table, 32)
    inputs, x = layers.image_input(32, channels=3, flips=flips)
    front = keras.Model(inputs, x)
    one = np.repeat(cached[5][None, ..., None], 64, axis=0)
    ref = cached[5].astype(np.float32) / 255.0
    seen = set()
    for img in np.asarray(front(one, training=True))[..., 0]:
        for name, r in (
            ("none", ref),
            ("lr", ref[:, ::-1]),
            ("ud", ref[::-1]),
            ("both", ref[::-1, ::-1]),
        ):
            if np.allclose(img, r, atol=1e-6):
                seen.add(name)
    return seen, np.asarray(front(one, training=False)), ref


def test_model_front_scales_tiles_and_flips_each_image_independently(table):
    seen, out, ref = _flips_seen(table, True)
    assert out.shape == (64, 32, 32, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[..., 0], np.broadcast_to(ref, (64, 32, 32)), atol=1e-6)
    np.testing.assert_allclose(out[..., 0], out[..., 2])
    assert seen == {"none", "lr", "ud", "both"}  # two independent coins, not one for both axes


@pytest.mark.parametrize(
    "flips, expected", [("both", {"none", "lr", "ud", "both"}), ("horizontal", {"none", "lr"})]
)
def test_model_front_flips_as_asked(table, flips, expected):
    seen, out, ref = _flips_seen(table, flips)
    assert seen == expected  # "horizontal": mirrored hands, never one upside down
    np.testing.assert_allclose(out[..., 0], np.broadcast_to(ref, (64, 32, 32)), atol=1e-6)


def test_model_front_without_flips_and_a_wrong_mode(table):
    assert _flips_seen(table, "none")[0] == {"none"}
    from nblib.models import layers

    with pytest.raises(ValueError, match="flips must be one of .*'diagonal'"):
        layers.image_input(32, flips="diagonal")


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


def test_each_image_decoded_once(table):
    before = pipeline.CACHE.decodes
    ds = pipeline.make_dataset(table, 28, 3, training=True, feed="tf.data")
    for _ in range(2):
        for _ in ds:
            pass
    pipeline.make_dataset(table, 28, 3, training=False)
    pipeline.make_dataset(table.iloc[:3], 28, 3, training=False)  # a subset reuses the decoded rows
    assert pipeline.CACHE.decodes - before == len(table)


def test_training_order_is_seeded(table):
    def ys(seed):
        return np.concatenate(
            [np.asarray(b[1]) for b in pipeline.make_dataset(table, 16, 2, True, seed=seed)]
        )

    assert ys(3).tolist() == ys(3).tolist()
    assert sorted(ys(3)) == sorted(table["boneage"])


def test_autoencoder_target(table):
    x, t = next(iter(pipeline.make_dataset(table, 16, 2, training=False, target="image")))
    assert x.shape == t.shape == (2, 16, 16, 1) and t.dtype.name == "float32"
    np.testing.assert_allclose(np.asarray(t), np.asarray(x) / 255.0, atol=1e-7)


def test_unreadable_image_is_named(table, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a png at all")
    t = pd.concat([table, table.iloc[[0]].assign(id="b", path=str(bad))], ignore_index=True)
    with pytest.raises(ValueError, match="broken.png"):
        pipeline.load_images(t, 16)


def test_benchmark_command_prints_the_ratio(tiny_dataset):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "nblib.apps.benchmark",
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
    df = loading.load_dataset(shared_dir / "data" / "rsna-sample").head(64)
    x, y = next(iter(pipeline.make_dataset(df, 64, 64, training=False)))
    assert x.shape == (64, 64, 64, 1) and float(np.asarray(x).std()) > 12


def test_a_run_can_own_its_decode_cache(table):
    # A cache passed by the run is filled and counted on its own; the process's cache is untouched.
    own = pipeline.DecodeCache()
    before = pipeline.CACHE.decodes
    for _ in pipeline.datasets({"validation": table}, 22, 4, seed=0, cache=own)["validation"]:
        pass
    expected = np.stack([pipeline.decode(p, 22) for p in table["path"]])
    np.testing.assert_array_equal(pipeline.load_images(table, 22, cache=own), expected)
    assert own.decodes == len(table) and pipeline.CACHE.decodes == before
    assert pipeline.CACHE.known(22) == {} and len(own.known(22)) == len(table)
    own.clear()
    assert own.known(22) == {} and own.decodes == len(table)


def test_data_checks_are_the_only_decode_of_a_run(tiny_dataset, tmp_path):
    # load_for decodes every image once for its checks; the pipeline feeds those same decodes.
    cfg = config.make("03_resnet50", "smoke", data_dir=str(tiny_dataset), output_dir=str(tmp_path))
    pipeline.CACHE.clear()
    before = pipeline.CACHE.decodes
    df = loading.load_for(cfg)
    for split in splitting.SPLITS:
        part = df[df["split"] == split]
        for _ in pipeline.make_dataset(part, cfg.image_size, 8, training=split == "train"):
            pass
    assert pipeline.CACHE.decodes - before == len(loading.load_dataset(tiny_dataset))
