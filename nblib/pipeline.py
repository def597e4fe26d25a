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
import struct
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


RADIOGRAPH_BITS = (10, 12, 14, 16)  # bit depths radiographs are stored with in 16-bit PNGs
MIN_SIDE = 32  # a smaller image holds no hand worth measuring
BLANK_STD = 2.0  # gray levels of 255: below this standard deviation an image is blank


def png_significant_bits(path: str | Path) -> int | None:
    """The bit depth a PNG's ``sBIT`` chunk declares for its gray or colour samples, or None.

    A 12-bit radiograph saved as a 16-bit PNG keeps its values in 0-4095; the sBIT chunk (when the
    writer set it) says so. Alpha bits are ignored: they do not scale the picture.
    """
    with open(path, "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return None
        ctype = None
        while True:
            head = f.read(8)
            if len(head) < 8:
                return None
            length, kind = struct.unpack(">I4s", head)
            if kind == b"IHDR":
                ctype = f.read(length)[9]
                f.seek(4, 1)
                continue
            if kind in (b"IDAT", b"IEND"):
                return None  # sBIT must come before the image data
            if kind == b"sBIT":
                body = f.read(length)
                samples = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}.get(ctype, len(body))
                return max(body[:samples]) if body else None
            f.seek(length + 4, 1)


def bits_of(img: np.ndarray, path: str | Path) -> int:
    """The bit depth a 16-bit image is scaled by: its sBIT chunk, else the smallest of 10, 12,
    14 and 16 bits that holds its largest value (see data/README.md)."""
    declared = png_significant_bits(path) if str(path).lower().endswith(".png") else None
    if declared and 1 <= declared <= 16:
        return int(declared)
    top = int(img.max())
    return next(b for b in RADIOGRAPH_BITS if top <= 2**b - 1)


def read_gray(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """One image file at full size -> (uint8 gray, its alpha channel or None).

    16-bit images are scaled by their real bit depth (:func:`bits_of`), so a 12-bit radiograph
    becomes a full-range 8-bit picture rather than a nearly black one. Raises ValueError naming
    the file if it cannot be decoded.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not an image file")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(
            f"Cannot decode image {path}: missing, empty, truncated, corrupt or not an image"
        )
    alpha = None
    if img.ndim == 3:
        if img.shape[2] == 4:
            alpha = img[..., 3]
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
        else:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    if img.dtype == np.uint16:
        scale = 255.0 / (2 ** bits_of(img, path) - 1)
        img = np.clip(np.round(img * scale), 0, 255).astype(np.uint8)
        if alpha is not None:
            alpha = (alpha / 257.0).round().astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ValueError(f"Unsupported pixel type {img.dtype} in {path}; use 8- or 16-bit PNG")
    return img, alpha


def decode(path: str | Path, image_size: int) -> np.ndarray:
    """One image file -> uint8 ``S x S`` gray. Raises ValueError naming the file if unreadable."""
    img, _ = read_gray(path)
    DECODES["count"] += 1
    interp = cv2.INTER_AREA if max(img.shape) > image_size else cv2.INTER_LINEAR
    return cv2.resize(img, (image_size, image_size), interpolation=interp)


def inspect_image(path: str | Path) -> tuple[str | None, str | None]:
    """Decode one image fully and judge it: ``(problem, warning)``, either None.

    Problems make the image unusable (cannot be decoded, too small, blank, picture only in the
    alpha channel); a warning marks an image that is probably wrong but may be meant (a white
    background, as an inverted radiograph has). Radiographs have a dark background: the border
    is dark and most pixels are darker than the mean. None of the 1,000 real RSNA sample images
    is flagged by the rule below, while most of their inverted copies are.
    """
    try:
        img, alpha = read_gray(path)
    except ValueError as e:
        return f"cannot be decoded ({e})", None
    except cv2.error as e:  # a damaged body can fail inside OpenCV's decoder
        return f"cannot be decoded (corrupt image data: {str(e).strip()[:120]})", None
    h, w = img.shape
    if min(h, w) < MIN_SIDE:
        return f"image is only {w}x{h} px; at least {MIN_SIDE} px a side is needed", None
    std = float(img.std())
    if std < BLANK_STD:
        if alpha is not None and float(alpha.std()) >= BLANK_STD:
            return (
                "the picture is only in the alpha (transparency) channel and the gray channels "
                "are blank; save it as a plain gray PNG",
                None,
            )
        return f"image is blank (one flat gray level, {int(np.median(img))} of 255)", None
    b = max(1, min(h, w) // 20)
    border = np.concatenate(
        [img[:b].ravel(), img[-b:].ravel(), img[:, :b].ravel(), img[:, -b:].ravel()]
    )
    median, mean = float(np.median(img)), float(img.mean())
    if float(np.median(border)) >= 128 and (median > mean or median >= 160):
        return None, (
            "looks inverted (white background, dark bones); radiographs here are expected "
            "dark background, bright bones: check it, or invert it (255 - pixel)"
        )
    return None, None


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
