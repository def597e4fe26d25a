"""Throughput benchmarks (not timed tests): ``python -m nblib.benchmark pipeline|train``.

``pipeline`` measures the input pipeline's images/s for a first epoch (which decodes) and a
second (from the cache), against a naive loader that decodes every image every epoch, in one run,
and prints the ratio. ``train`` measures a model's training images/s at a given size, width and
batch, with mixed precision and XLA on or off.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


def _table(data_dir: str | None, n: int, seed: int):
    from nblib import config, data

    if data_dir:
        df = data.load_dataset(data_dir)
    else:
        cfg = config.make("02_preprocessing", "cpu", seed=seed)
        df = data.load_dataset(data.resolve_data_dir(cfg))
    return df.sample(n=min(n, len(df)), random_state=seed).reset_index(drop=True)


def naive_dataset(df, image_size: int, batch_size: int):
    """What a first attempt looks like: cv2 decode + resize of every image in every epoch."""
    import cv2
    import tensorflow as tf

    paths, ages = list(df["path"]), df["boneage"].to_numpy(np.float32)

    def gen():
        for p, a in zip(paths, ages, strict=True):
            img = cv2.resize(cv2.imread(p, cv2.IMREAD_GRAYSCALE), (image_size, image_size))
            yield np.repeat(img[..., None], 3, -1).astype(np.float32) / 255.0, a

    sig = (tf.TensorSpec((image_size, image_size, 3), tf.float32), tf.TensorSpec((), tf.float32))
    return tf.data.Dataset.from_generator(gen, output_signature=sig).batch(batch_size)


def _epoch_rate(ds) -> float:
    n, t = 0, time.perf_counter()
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - t)


def pipeline_throughput(df, image_size: int = 256, batch_size: int = 16, epochs: int = 2) -> dict:
    """Images/s of the project's pipeline per epoch and of the naive loader, measured in one run."""
    from nblib import pipeline

    pipeline.clear_cache()
    t = time.perf_counter()
    ds = pipeline.make_dataset(df, image_size, batch_size, training=True)
    build = time.perf_counter() - t
    rates = [_epoch_rate(ds) for _ in range(epochs)]
    first = len(df) / (build + len(df) / rates[0])  # epoch 1 includes the decode done at build time
    naive = _epoch_rate(naive_dataset(df, image_size, batch_size))
    return {
        "images": len(df),
        "image_size": image_size,
        "batch_size": batch_size,
        "pipeline_epoch1_img_s": first,
        "pipeline_epoch2_img_s": rates[1] if epochs > 1 else rates[0],
        "naive_img_s": naive,
        "ratio_epoch2_vs_naive": (rates[1] if epochs > 1 else rates[0]) / naive,
    }


def train_throughput(
    model_name: str,
    image_size: int,
    width: float,
    batch_size: int = 16,
    steps: int = 10,
    mixed_precision: bool = False,
    xla: bool = False,
) -> dict:
    """Training images/s of a model on random data (after a warm-up step that builds the graph)."""
    import keras
    import tensorflow as tf

    from nblib.models import autoencoder, inception_v4, resnet50

    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if model_name == "autoencoder":
        model, _ = autoencoder.build(image_size, width)
        x = np.random.rand(batch_size, image_size, image_size, 1).astype(np.float32)
        y = x
    else:
        model = {"resnet50": resnet50.build, "inception_v4": inception_v4.build}[model_name](
            image_size, width
        )
        x = np.random.rand(batch_size, image_size, image_size, 3).astype(np.float32)
        y = np.random.uniform(1, 228, batch_size).astype(np.float32)
    model.compile(optimizer="adam", loss="mse", jit_compile=xla)
    ds = tf.data.Dataset.from_tensors((x, y)).repeat()
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    rate = steps * batch_size / (time.perf_counter() - t)
    return {
        "model": model_name,
        "image_size": image_size,
        "width": width,
        "batch_size": batch_size,
        "mixed_precision": mixed_precision,
        "xla": xla,
        "params": model.count_params(),
        "first_step_s": warmup,
        "train_img_s": rate,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m nblib.benchmark", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pipeline", help="input pipeline vs a naive loader")
    p.add_argument(
        "--data", default=None, help="dataset folder (default: the embedded synthetic data)"
    )
    p.add_argument("--n", type=int, default=500, help="images to use")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    t = sub.add_parser("train", help="training images/s of a model")
    t.add_argument(
        "--model", choices=["resnet50", "inception_v4", "autoencoder"], default="resnet50"
    )
    t.add_argument("--image-size", type=int, default=128)
    t.add_argument("--width", type=float, default=0.25)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument("--mixed-precision", action="store_true")
    t.add_argument("--xla", action="store_true")
    t.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    if args.what == "pipeline":
        res = pipeline_throughput(
            _table(args.data, args.n, args.seed), args.image_size, args.batch_size
        )
        print(
            f"pipeline, {res['images']} images at {res['image_size']} px, batch {res['batch_size']}:"
        )
        print(f"  epoch 1 (decode + cache): {res['pipeline_epoch1_img_s']:9.1f} img/s")
        print(f"  epoch 2 (from cache):     {res['pipeline_epoch2_img_s']:9.1f} img/s")
        print(f"  naive loader (decode every epoch): {res['naive_img_s']:9.1f} img/s")
        print(f"  ratio epoch 2 / naive: {res['ratio_epoch2_vs_naive']:.1f}x")
    else:
        res = train_throughput(
            args.model,
            args.image_size,
            args.width,
            args.batch_size,
            args.steps,
            args.mixed_precision,
            args.xla,
        )
        print(
            f"{res['model']} at {res['image_size']} px, width {res['width']}, batch {res['batch_size']}, "
            f"mixed precision {'on' if res['mixed_precision'] else 'off'}, XLA {'on' if res['xla'] else 'off'}: "
            f"{res['train_img_s']:.1f} train img/s (first step {res['first_step_s']:.1f} s, {res['params']:,} params)"
        )
    if args.out:
        from nblib import results

        results.write_json(Path(args.out), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
