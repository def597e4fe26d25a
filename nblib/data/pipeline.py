"""The input pipeline: decode each image once per run, then feed batches from memory.

``decode`` reads an image (8/16-bit, gray/RGB/RGBA -> 8-bit gray) and resizes it to ``S x S``
(aspect not kept, as paper 1 does). A :class:`DecodeCache` keeps those uint8 arrays, and the data
checks' verdicts, for the run that owns it, so train, validation and test sets and every model of
a notebook reuse one decode; the functions that read or fill it take it as ``cache`` (None: the
process's :data:`CACHE`). ``make_dataset`` feeds batches of those uint8 images: a ``tf.data`` pipeline under TensorFlow (``nblib.core.tfbackend``), a backend-neutral
``keras.utils.PyDataset`` elsewhere. Scaling to [0, 1], channels and random flips happen in the
model's first layers, on the accelerator.
"""

from __future__ import annotations

import functools
import hashlib
import os
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from nblib.core import progress as progress_bar

RADIOGRAPH_BITS = (10, 12, 14, 16)  # bit depths radiographs are stored with in 16-bit PNGs
MIN_SIDE = 32  # a smaller image holds no hand worth measuring
BLANK_STD = 2.0  # gray levels of 255: below this standard deviation an image is blank
INVERTED = (  # the data checks' warning for a white background
    "looks inverted (white background, dark bones); radiographs here are expected "
    "dark background, bright bones: check it, or invert it (255 - pixel)"
)


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


def resize(img: np.ndarray, image_size: int) -> np.ndarray:
    """Full-size uint8 gray -> ``S x S`` (aspect not kept, as paper 1 does)."""
    interp = cv2.INTER_AREA if max(img.shape) > image_size else cv2.INTER_LINEAR
    return cv2.resize(img, (image_size, image_size), interpolation=interp)


def decode(path: str | Path, image_size: int) -> np.ndarray:
    """One image file -> uint8 ``S x S`` gray. Raises ValueError naming the file if unreadable."""
    img, _ = read_gray(path)
    return resize(img, image_size)


class DecodeCache:
    """The decoded images and the data checks' verdicts of the run that owns it, in memory.

    Like MONAI's ``CacheDataset``, an object the run creates and passes (``cache=``) rather than
    module state: train, validation and test sets and every model of a notebook reuse one decode,
    while a test, a benchmark or a second run in one process can hold a cache of its own.
    Images are kept by (paths, size) as stacked arrays, verdicts ``(problem, warning)`` by path.
    ``decodes`` counts the files this cache had decoded from disk (the tests read it); it keeps
    counting across :meth:`clear`, so a caller measures a difference.
    """

    def __init__(self) -> None:
        self._images: dict[tuple, np.ndarray] = {}  # key -> uint8 [N, S, S]
        self._paths: dict[str, list[str]] = {}  # key digest -> the paths of its rows
        self._verdicts: dict[str, tuple] = {}  # path -> (problem, warning) of the data checks
        self._lock = threading.Lock()  # decodes are counted from worker threads
        self.decodes = 0

    def remember(self, paths: list[str], image_size: int, images: np.ndarray) -> None:
        """Keep already-decoded ``S x S`` images, row for row with ``paths`` (the data checks
        decode every image once before training; the pipeline then reuses those decodes)."""
        key = _key(list(paths), image_size)
        self._images[key], self._paths[key[0]] = images, list(paths)

    def remember_verdicts(self, paths: list[str], verdicts: list[tuple]) -> None:
        """Keep the data checks' ``(problem, warning)`` of ``paths``, so that a later check of
        the same file needs no decode."""
        for p, (problem, warning) in zip(paths, verdicts, strict=True):
            self._verdicts[str(p)] = (problem, warning)

    def verdict(self, path: str | Path) -> tuple | None:
        """The checks' ``(problem, warning)`` of ``path``, or None if it was not judged."""
        return self._verdicts.get(str(path))

    def known(self, image_size: int) -> dict[str, np.ndarray]:
        """Index of already-decoded images at this size: path -> array (views, no copies)."""
        index: dict[str, np.ndarray] = {}
        for (digest, _, size), arr in self._images.items():
            if size == image_size:
                for p, img in zip(self._paths.get(digest, ()), arr, strict=False):
                    index[p] = img
        return index

    def count_decode(self) -> None:
        """Count one file decoded from disk for this cache (safe from worker threads)."""
        with self._lock:
            self.decodes += 1

    def load(self, df: pd.DataFrame, image_size: int, progress: bool = True) -> np.ndarray:
        """uint8 ``[N, S, S]`` images of ``df["path"]``, decoded once (memoised).

        Rows already decoded for another table at the same size are reused, so a split's subsets
        cost nothing once the whole table was loaded; the rest are decoded in threads (OpenCV
        releases the GIL). Between the notebooks of a run, the data checks' cache
        (``checks.inspect``) keeps the decodes on disk.
        """
        paths = [str(p) for p in df["path"]]
        key = _key(paths, image_size)
        if key in self._images:
            return self._images[key]
        known = self.known(image_size)
        out = np.empty((len(paths), image_size, image_size), np.uint8)
        todo = []
        for i, p in enumerate(paths):
            if p in known:
                out[i] = known[p]
            else:
                todo.append(i)
        if todo:
            self._decode_into(out, paths, todo, image_size, progress)
        self._images[key], self._paths[key[0]] = out, paths
        return out

    def _decode_into(self, out, paths, todo, image_size, progress) -> None:
        bar = None
        if progress and len(todo) > 200:
            bar = progress_bar.bar(len(todo), f"decoding images at {image_size} px", leave=False)
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as ex:
            for i, img in zip(
                todo, ex.map(lambda j: decode(paths[j], image_size), todo), strict=True
            ):
                out[i] = img
                self.count_decode()
                if bar:
                    bar.update()
        if bar:
            bar.close()

    def clear(self) -> None:
        """Forget every decoded image and verdict (frees memory; the next load decodes again)."""
        self._images.clear()
        self._paths.clear()
        self._verdicts.clear()


# The process's cache, which a notebook's kernel owns: what ``cache=None`` means everywhere.
CACHE = DecodeCache()


def _of(cache: DecodeCache | None) -> DecodeCache:
    return CACHE if cache is None else cache


def inspect_image(
    path: str | Path,
    image_size: int | None = None,
    known: dict | None = None,
    cache: DecodeCache | None = None,
) -> tuple[str | None, str | None, np.ndarray | None]:
    """Decode one image fully and judge it: ``(problem, warning, image)``.

    ``image`` is the decoded picture resized to ``image_size`` (None without a size or when the
    image is unusable), so that the check is the run's one decode of that file. A file already
    judged in ``cache``, and decoded there at this size, is not decoded again (``known``: the
    index of :meth:`DecodeCache.known` at this size, built once by the caller).

    Problems make the image unusable (cannot be decoded, too small, blank, picture only in the
    alpha channel); a warning marks an image that is probably wrong but may be meant (a white
    background, as an inverted radiograph has). Radiographs have a dark background: the border
    is dark and most pixels are darker than the mean. None of the 1,000 real RSNA sample images
    is flagged by the rule below, while most of their inverted copies are.
    """
    cache = _of(cache)
    verdict = cache.verdict(path)
    if verdict is not None:
        if image_size and known is None:
            known = cache.known(image_size)
        small = known.get(str(path)) if image_size else None
        if not image_size or small is not None or verdict[0]:
            return verdict[0], verdict[1], small
    try:
        img, alpha = read_gray(path)
        cache.count_decode()
    except ValueError as e:
        return f"cannot be decoded ({e})", None, None
    except cv2.error as e:  # a damaged body can fail inside OpenCV's decoder
        return f"cannot be decoded (corrupt image data: {str(e).strip()[:120]})", None, None
    problem, warning = judge(img, alpha)
    cache.remember_verdicts([path], [(problem, warning)])
    small = resize(img, image_size) if image_size and not problem else None
    return problem, warning, small


def judge(img: np.ndarray, alpha: np.ndarray | None = None) -> tuple[str | None, str | None]:
    """``(problem, warning)`` of a decoded full-size image (see :func:`inspect_image`); also used
    by ``nblib.apps.predict`` on images that do not come from a PNG file (DICOM)."""
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
        return None, INVERTED
    return None, None


def _key(paths: list[str], image_size: int) -> tuple:
    return (hashlib.sha1("\n".join(paths).encode()).hexdigest(), len(paths), image_size)


def load_images(
    df: pd.DataFrame, image_size: int, progress: bool = True, cache: DecodeCache | None = None
) -> np.ndarray:
    """uint8 ``[N, S, S]`` images of ``df["path"]``, decoded once: :meth:`DecodeCache.load` of
    ``cache`` (None: the process's :data:`CACHE`), for callers that hold no cache of their own."""
    return _of(cache).load(df, image_size, progress)


def make_dataset(
    df: pd.DataFrame,
    image_size: int,
    batch_size: int,
    training: bool,
    target: str | None = "boneage",
    seed: int = 0,
    feed: str = "auto",
    images: np.ndarray | None = None,
    sex: np.ndarray | None = None,
    cache: DecodeCache | None = None,
):
    """Batches of raw uint8 images ``[B, S, S, 1]`` from the decoded-once ``cache``.

    Yields ``(x, y)`` with ``y`` float32 ``[B]`` (``target="boneage"``), ``(x, x / 255)`` with
    ``target="image"`` (the autoencoder's float target), or ``x`` alone with ``target=None``.
    Training: a new seeded order every epoch (the same seed gives the same orders; the two
    feeds order differently); otherwise ``df`` order. Scaling, channels and the
    random flips are the model's first layers (``nblib.models.layers.image_input``), so they run
    on the accelerator and a saved model takes a raw image.

    ``feed``: ``"tf.data"`` (a ``tf.data`` pipeline), ``"pydataset"`` (a backend-neutral
    ``keras.utils.PyDataset``), or ``"auto"``: tf.data under the TensorFlow backend, where it
    was measured faster, PyDataset under JAX and PyTorch (no TensorFlow needed).

    ``images`` (uint8 ``[N, S, S]``, row for row with ``df``) replaces the decode-once ``cache``
    (None: the process's :data:`CACHE`), for images preprocessed otherwise (notebook 07's crops).
    ``sex`` (``[N]``, 1 = male) makes the
    inputs a pair ``(image, sex [B, 1])`` for a model with a second input.
    """
    if len(df) == 0:
        raise ValueError("Cannot make a dataset from an empty table")
    if target not in ("boneage", "image", None):
        raise ValueError(f"target must be 'boneage', 'image' or None, got {target!r}")
    if images is None:
        images = _of(cache).load(df, image_size)
    elif images.shape[:3] != (len(df), image_size, image_size) or images.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 [{len(df)}, {image_size}, {image_size}], "
            f"got {images.dtype} {list(images.shape)}"
        )
    labels = (
        df["boneage"].to_numpy(np.float32) if "boneage" in df else np.zeros(len(df), np.float32)
    )
    if feed == "auto":
        import keras

        feed = "tf.data" if keras.backend.backend() == "tensorflow" else "pydataset"
    extra = None if sex is None else np.asarray(sex, np.float32).reshape(-1, 1)
    if extra is not None and len(extra) != len(df):
        raise ValueError(f"sex has {len(extra)} rows for a table of {len(df)}")
    source = BatchSource(images, labels, batch_size, training, target, seed, extra)
    if feed == "tf.data":
        from nblib.core import tfbackend

        return tfbackend.dataset(source)
    if feed != "pydataset":
        raise ValueError(f"feed must be auto, tf.data or pydataset, got {feed!r}")
    return batches(source)


def datasets(
    parts: dict[str, pd.DataFrame],
    image_size: int,
    batch_size: int,
    seed: int,
    target: str | None = "boneage",
    splits: tuple[str, ...] | None = None,
    cache: DecodeCache | None = None,
) -> dict:
    """One dataset per split of ``parts`` (or of ``splits``), fed from ``cache`` (None: the
    process's :data:`CACHE`): the training split in a seeded new order every epoch, the others in
    table order (so predictions line up with their rows)."""
    return {
        s: make_dataset(
            parts[s],
            image_size,
            batch_size,
            training=(s == "train"),
            target=target,
            seed=seed,
            cache=cache,
        )
        for s in (splits or tuple(parts))
    }


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

    Both feeds wrap it: ``tfbackend.dataset`` (tf.data) and :func:`batches` (keras PyDataset). The
    epoch advances when a feed finishes one; :meth:`set_epoch` sets it for a resumed training.
    """

    def __init__(self, images, labels, batch_size, training, target, seed, extra=None):
        self.images, self.labels, self.extra = images, labels, extra
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
        if self.extra is not None:
            x = (x, self.extra[idx])
        if self.target == "image":
            return x, x.astype(np.float32) * np.float32(1.0 / 255.0)
        if self.target is None:
            return (x,)
        return x, self.labels[idx]


def batches(source: BatchSource):
    """``source`` as a ``keras.utils.PyDataset``: the feed under JAX and PyTorch (and TensorFlow
    on request). Its class subclasses a Keras class, so it is made on the first call: importing
    the pipeline then imports neither Keras nor TensorFlow."""
    return _batches_class()(source)


@functools.cache
def _batches_class() -> type:
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
