"""The input pipeline: decode each image once per run, then feed batches from memory.

``load_images`` decodes (8/16-bit, gray/RGB/RGBA -> 8-bit gray), resizes to ``S x S`` (aspect not
kept, as paper 1 does) and keeps the uint8 array in a per-process cache, so train, validation and
test sets and every model of a notebook reuse one decode. ``make_dataset`` feeds batches of those
uint8 images: a ``tf.data`` pipeline under TensorFlow (``nblib.tfbackend``), a backend-neutral
``keras.utils.PyDataset`` elsewhere. Scaling to [0, 1], channels and random flips happen in the
model's first layers, on the accelerator.
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
    seed: int = 0,
    cache_dir: Path | str | None = None,
    feed: str = "auto",
):
    """Batches of raw uint8 images ``[B, S, S, 1]`` from the decoded-once cache.

    Yields ``(x, y)`` with ``y`` float32 ``[B]`` (``target="boneage"``), ``(x, x / 255)`` with
    ``target="image"`` (the autoencoder's float target), or ``x`` alone with ``target=None``.
    Training: a new seeded order every epoch (the same seed gives the same orders; the two
    feeds order differently); otherwise ``df`` order. Scaling, channels and the
    random flips are the model's first layers (``nblib.models.layers.image_input``), so they run
    on the accelerator and a saved model takes a raw image.

    ``feed``: ``"tf.data"`` (a ``tf.data`` pipeline), ``"pydataset"`` (a backend-neutral
    ``keras.utils.PyDataset``), or ``"auto"``: tf.data under the TensorFlow backend, where it
    was measured faster, PyDataset under JAX and PyTorch (no TensorFlow needed).
    """
    if len(df) == 0:
        raise ValueError("Cannot make a dataset from an empty table")
    if target not in ("boneage", "image", None):
        raise ValueError(f"target must be 'boneage', 'image' or None, got {target!r}")
    images = load_images(df, image_size, cache_dir=cache_dir)
    labels = (
        df["boneage"].to_numpy(np.float32) if "boneage" in df else np.zeros(len(df), np.float32)
    )
    if feed == "auto":
        import keras

        feed = "tf.data" if keras.backend.backend() == "tensorflow" else "pydataset"
    source = BatchSource(images, labels, batch_size, training, target, seed)
    if feed == "tf.data":
        from nblib import tfbackend

        return tfbackend.dataset(source)
    if feed != "pydataset":
        raise ValueError(f"feed must be auto, tf.data or pydataset, got {feed!r}")
    return _batches_class()(source)


def epoch_order(n: int, seed: int, epoch: int, training: bool) -> np.ndarray:
    """The order rows are fed in one epoch: seeded by (seed, epoch) when training, else 0..n-1.

    A pure function of its arguments, so the order never depends on thread timing, and a resumed
    run feeds epoch k exactly as an uninterrupted one does.
    """
    if not training:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


class BatchSource:
    """Batch ``i`` of the current epoch, gathered from the uint8 cache; no framework needed.

    Both feeds wrap it: ``tfbackend.dataset`` (tf.data) and ``Batches`` (keras PyDataset). The
    epoch advances when a feed finishes one; :meth:`set_epoch` sets it for a resumed training.
    """

    def __init__(self, images, labels, batch_size, training, target, seed):
        self.images, self.labels = images, labels
        self.batch_size, self.training, self.target, self.seed = (
            batch_size,
            training,
            target,
            seed,
        )
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.order = epoch_order(len(self.images), self.seed, epoch, self.training)

    def __len__(self) -> int:
        return steps(len(self.images), self.batch_size)

    def batch_indices(self, i: int):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        return idx, idx

    def __getitem__(self, i: int):
        idx = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        x = self.images[idx][..., None]
        if self.target == "image":
            return x, x.astype(np.float32) * np.float32(1.0 / 255.0)
        if self.target is None:
            return (x,)
        return x, self.labels[idx]


def _batches_class():
    import keras

    class Batches(keras.utils.PyDataset):
        """A :class:`BatchSource` as a Keras PyDataset (JAX, PyTorch, or TensorFlow on request).

        Two worker threads gather the next batches while the accelerator works on this one;
        Keras keeps their order, so what is fed never depends on the threads' timing.
        """

        def __init__(self, source: BatchSource):
            super().__init__(workers=2, use_multiprocessing=False, max_queue_size=8)
            self.source = source

        def set_epoch(self, epoch: int) -> None:
            self.source.set_epoch(epoch)

        def __len__(self):
            return len(self.source)

        def __getitem__(self, i):
            return self.source[i]

        def on_epoch_end(self):
            self.source.set_epoch(self.source.epoch + 1)

    return Batches


def steps(n: int, batch_size: int) -> int:
    """Batches per epoch for ``n`` rows."""
    return max(1, -(-n // batch_size))
