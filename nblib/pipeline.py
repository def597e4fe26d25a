"""The input pipeline: decode each image once per run, then feed batches from memory.

``load_images`` decodes (8/16-bit, gray/RGB/RGBA -> 8-bit gray), resizes to ``S x S`` (aspect not
kept, as paper 1 does) and keeps the uint8 array in a per-process cache, so train, validation and
test sets and every model of a notebook reuse one decode. ``make_dataset`` turns the cached array
into a ``tf.data`` pipeline: shuffle (training) -> batch -> scale to [0, 1] -> channels -> random
horizontal and vertical flips (training only) -> prefetch.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

_CACHE: dict[tuple, np.ndarray] = {}
_PATHS: dict[str, list[str]] = {}  # cache key digest -> the paths of its rows
DECODES = {"count": 0}  # images decoded from disk in this process (the tests read it)
MAX_IN_GRAPH_BYTES = (
    1_500_000_000  # larger caches are fed by a generator (graph protobuf limit 2 GB)
)


def decode(path: str | Path, image_size: int) -> np.ndarray:
    """One image file -> uint8 ``S x S`` gray. Raises ValueError naming the file if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"Cannot decode image {path}: missing, empty, truncated or not an image")
    if img.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if img.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        img = cv2.cvtColor(img, code)
    if img.dtype == np.uint16:
        img = (img / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"Unsupported pixel type {img.dtype} in {path}; use 8- or 16-bit PNG")
    DECODES["count"] += 1
    interp = cv2.INTER_AREA if max(img.shape) > image_size else cv2.INTER_LINEAR
    return cv2.resize(img, (image_size, image_size), interpolation=interp)


def _key(paths: list[str], image_size: int) -> tuple:
    return (hashlib.sha1("\n".join(paths).encode()).hexdigest(), len(paths), image_size)


def load_images(
    df: pd.DataFrame, image_size: int, progress: bool = True, cache_dir: Path | str | None = None
) -> np.ndarray:
    """uint8 ``[N, S, S]`` images of ``df["path"]``, decoded once per process (memoised).

    Rows already decoded for another table at the same size are reused, so a split's subsets
    cost nothing once the whole table was loaded. ``cache_dir`` adds an ``.npy`` cache on disk
    that survives between runs (keyed by paths, sizes on disk and ``S``).
    """
    paths = [str(p) for p in df["path"]]
    key = _key(paths, image_size)
    if key in _CACHE:
        return _CACHE[key]
    disk = None
    if cache_dir:
        h = hashlib.sha1(key[0].encode())
        for p in paths:
            h.update(str(os.path.getsize(p)).encode())
        disk = Path(cache_dir) / f"images-{image_size}-{h.hexdigest()[:16]}.npy"
        if disk.is_file():
            _CACHE[key], _PATHS[key[0]] = np.load(disk), paths
            return _CACHE[key]
    known = _known_images(image_size)
    out = np.empty((len(paths), image_size, image_size), np.uint8)
    todo = []
    for i, p in enumerate(paths):
        if p in known:
            out[i] = known[p]
        else:
            todo.append(i)
    if todo:
        bar = None
        if progress and len(todo) > 200:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc=f"decoding images at {image_size} px", leave=False)
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as ex:
            for i, img in zip(
                todo, ex.map(lambda j: decode(paths[j], image_size), todo), strict=True
            ):
                out[i] = img
                if bar:
                    bar.update()
        if bar:
            bar.close()
    _CACHE[key], _PATHS[key[0]] = out, paths
    if disk is not None:
        from nblib import results

        with results.atomic_path(disk) as tmp:
            np.save(tmp, out)
    return out


def _known_images(image_size: int) -> dict[str, np.ndarray]:
    """Index of already-decoded images at this size: path -> array (views, no copies)."""
    index: dict[str, np.ndarray] = {}
    for (digest, _, size), arr in _CACHE.items():
        if size == image_size:
            for p, img in zip(_PATHS.get(digest, ()), arr, strict=False):
                index[p] = img
    return index


def clear_cache() -> None:
    """Forget every decoded image (frees memory; the next load decodes again)."""
    _CACHE.clear()
    _PATHS.clear()


def make_dataset(
    df: pd.DataFrame,
    image_size: int,
    batch_size: int,
    training: bool,
    target: str | None = "boneage",
    channels: int = 3,
    seed: int = 0,
    cache_dir: Path | str | None = None,
):
    """A batched ``tf.data.Dataset`` over ``df`` from the decoded-once cache.

    Yields ``(x, y)``: ``x`` float32 ``[B, S, S, channels]`` in [0, 1], ``y`` float32 ``[B]``
    (``target="boneage"``), ``(x, x)`` with ``target="image"`` (autoencoder), or ``x`` alone
    with ``target=None``. Training: reshuffled every epoch and each image flipped horizontally
    and vertically at random, independently. Otherwise: ``df`` order, no augmentation.
    """
    import tensorflow as tf

    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if len(df) == 0:
        raise ValueError("Cannot make a dataset from an empty table")
    images = load_images(df, image_size, cache_dir=cache_dir)
    labels = (
        df["boneage"].to_numpy(np.float32) if "boneage" in df else np.zeros(len(df), np.float32)
    )
    n = len(images)
    if images.nbytes <= MAX_IN_GRAPH_BYTES:
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if training:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    else:  # too big to embed in the graph: gather batches in Python from the same cache
        rng = np.random.default_rng(seed)

        def batches():
            order = rng.permutation(n) if training else np.arange(n)
            for s in range(0, n, batch_size):
                idx = np.sort(order[s : s + batch_size])
                yield images[idx], labels[idx]

        sig = (
            tf.TensorSpec([None, image_size, image_size], tf.uint8),
            tf.TensorSpec([None], tf.float32),
        )
        ds = tf.data.Dataset.from_generator(batches, output_signature=sig)
    flip_seed = tf.random.Generator.from_seed(seed) if training else None

    def prep(x, y):
        if training:  # flip the uint8 batch: a quarter of the bytes of the float image
            b = tf.shape(x)[0]
            lr = flip_seed.uniform([b, 1, 1]) < 0.5
            ud = flip_seed.uniform([b, 1, 1]) < 0.5
            x = tf.where(lr, tf.reverse(x, axis=[2]), x)
            x = tf.where(ud, tf.reverse(x, axis=[1]), x)
        x = tf.cast(x, tf.float32)[..., None] * (1.0 / 255.0)
        if channels == 3:
            x = tf.tile(x, [1, 1, 1, 3])
        if target == "image":
            return x, x
        if target is None:
            return x
        return x, y

    ds = ds.map(prep, num_parallel_calls=2, deterministic=True).prefetch(2)
    opts = tf.data.Options()
    # Autotuning re-plans buffers at every epoch boundary; on this small CPU it stalled fit() for
    # seconds per epoch. Fixed parallelism and prefetch depth keep the model fed without it.
    opts.autotune.enabled = False
    opts.experimental_deterministic = True
    return ds.with_options(opts)


def steps(n: int, batch_size: int) -> int:
    """Batches per epoch for ``n`` rows."""
    return max(1, -(-n // batch_size))
