"""The image checks: every file is read and judged once before training, in threads.

A file that is missing, not an image, damaged, blank, far too small or too large is listed with
its row and what is wrong; the usable decodes are kept for the run (and, keyed by every file's
path, size and time, in the run's ``cache/`` folder) so that no image is decoded twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.core import progress, results
from nblib.data import duplicates, pipeline

MAX_PIXELS = 50_000_000  # 50 megapixels: far above RSNA's largest (~2,500 x 3,000)


MAX_SIDE = 10_000


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# Other image formats found where a PNG was expected, and what to do about each.
OTHER_FORMATS = {
    ".jpg": "convert it to PNG (only PNG is read)",
    ".jpeg": "convert it to PNG (only PNG is read)",
    ".dcm": "convert the DICOM file to a 16-bit PNG (only PNG is read; see data/README.md)",
    ".tif": "convert it to PNG (only PNG is read)",
    ".tiff": "convert it to PNG (only PNG is read)",
    ".bmp": "convert it to PNG (only PNG is read)",
}


def png_problem(path: Path | str) -> str | None:
    """Why an image file cannot be used, or None. Reads the header and the last bytes only.

    Checks: exists, not empty, PNG signature, IHDR (size, bit depth, colour type), size limits,
    and that the file ends with the IEND chunk (a truncated download does not). 8- and 16-bit
    gray, RGB, RGBA and gray+alpha are accepted (converted to 8-bit gray when decoded).
    """
    path = Path(path)
    if path.is_dir():
        return "is a folder, not an image file"
    if not path.is_file():
        return "image file is missing" + _missing_hint(path)
    size = path.stat().st_size
    if size == 0:
        return "image file is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(33)
        if not head.startswith(PNG_SIGNATURE):
            return "not a PNG image (bad signature)"
        if len(head) < 33 or head[12:16] != b"IHDR":
            return "truncated PNG (no complete IHDR header)"
        w, h, depth, ctype = struct.unpack(">IIBB", head[16:26])
        if zlib.crc32(head[12:29]) & 0xFFFFFFFF != struct.unpack(">I", head[29:33])[0]:
            return "corrupt PNG header (checksum mismatch)"
        f.seek(max(0, size - 12))
        tail = f.read(12)
    if w == 0 or h == 0:
        return f"PNG has zero size ({w}x{h})"
    if min(w, h) < pipeline.MIN_SIDE:
        return f"image is only {w}x{h} px; at least {pipeline.MIN_SIDE} px a side is needed"
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        return f"image too large ({w}x{h}; limit {MAX_SIDE} px a side and {MAX_PIXELS // 1_000_000} megapixels)"
    if ctype not in (0, 2, 4, 6) or depth not in (8, 16):
        return f"unsupported PNG format (colour type {ctype}, bit depth {depth}); use 8/16-bit gray or RGB(A)"
    if tail[4:8] != b"IEND":
        return "truncated PNG (file ends before the IEND chunk)"
    return None


def _missing_hint(path: Path) -> str:
    """For a missing ``123.png``: the file of the same name in another case or format, if any."""
    folder = path.parent
    if not folder.is_dir():
        return f" (its folder {folder} does not exist either)"
    for other in sorted(folder.glob(f"{path.stem}.*")):
        ext = other.suffix.lower()
        if ext == ".png":
            return (
                f"; {other.name} exists: rename it to {path.name} (the extension must be "
                "lower-case .png)"
            )
        if ext in OTHER_FORMATS:
            return f"; {other.name} exists instead: {OTHER_FORMATS[ext]}"
    return ""


def image_problems(df: pd.DataFrame) -> pd.DataFrame:
    """Problems ``[id, path, reason]`` of every image in ``df`` (fast: headers and tails only)."""
    out = []
    for rid, path in zip(df["id"], df["path"], strict=True):
        reason = png_problem(path)
        if reason:
            out.append({"id": rid, "path": path, "reason": reason})
    return pd.DataFrame(out, columns=["id", "path", "reason"])


CHECKS_VERSION = 1  # part of the checks cache's key: raise it when the checks or resize change


PROGRESS_FROM = 200  # more images than this: the decode shows a progress line


CHECKS_CACHE_MAX_BYTES = 2**31  # larger decodes (full RSNA at 450 px) are not cached on disk


def _checks_cache_file(cache_dir: Path | str, paths: list[str], image_size: int) -> Path | None:
    """Where the checks of ``paths`` at ``image_size`` are cached: the name digests the version
    of the checks and every file's path, size and modification time, so that a changed, added or
    removed image makes a new key (None when a file cannot be stat-ed)."""
    h = hashlib.sha1(f"checks v{CHECKS_VERSION} {image_size}".encode())
    try:
        for p in paths:
            st = os.stat(p)
            h.update(f"\n{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    except OSError:
        return None
    return Path(cache_dir) / f"checks-{image_size}-{h.hexdigest()[:20]}.npz"


_UNREADABLE_CACHE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _read_checks(path: Path, paths: list[str]) -> tuple[list[tuple], np.ndarray] | None:
    """The verdicts ``(problem, warning)`` cached in ``path`` for ``paths`` and the decodes of the
    usable ones (stacked, in order), or None when the file is unreadable or not for ``paths``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if z["paths"].tolist() != paths:
                return None
            images, problems, warnings = z["images"], z["problems"], z["warnings"]
    except _UNREADABLE_CACHE:
        return None
    usable = sum(not p for p in problems.tolist())
    if images.shape[0] != usable or len(warnings) != len(paths) or len(problems) != len(paths):
        return None  # not what this version writes: decode again
    pairs = zip(problems.tolist(), warnings.tolist(), strict=True)
    return [(p or None, w or None) for p, w in pairs], images


def _write_checks(
    path: Path, paths: list[str], verdicts: list[tuple], images: np.ndarray | None, size: int
) -> None:
    """Cache the verdicts of ``paths`` and the stacked decodes of the usable ones (atomically),
    replacing older caches at this size. A cache that cannot be written (a full or read-only
    disk) is left out with a note: the next notebook then decodes again, and nothing else
    changes."""
    if images is None:
        images = np.zeros((0, size, size), np.uint8)
    if images.nbytes > CHECKS_CACHE_MAX_BYTES:
        return
    try:
        for old in path.parent.glob(f"checks-{size}-*.npz"):
            old.unlink(missing_ok=True)
        with results.atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(
                f,
                paths=np.array(paths, dtype=str),
                problems=np.array([v[0] or "" for v in verdicts], dtype=str),
                warnings=np.array([v[1] or "" for v in verdicts], dtype=str),
                images=images,
            )
    except OSError as e:
        print(
            f"Note: the data checks' cache {path} was not written ({e}); each notebook decodes again"
        )


@dataclasses.dataclass
class Inspection:
    """What the image checks found: ``problems`` and ``warnings`` ``[id, path, reason]``, and the
    decodes of the usable images (``ids``, in order, ``images`` N x S x S uint8) for the checks
    that compare images with each other (:mod:`nblib.data.duplicates`). ``images`` are at the
    run's image size, or at the duplicates' hash size when none was given."""

    problems: pd.DataFrame
    warnings: pd.DataFrame
    ids: list[str]
    images: np.ndarray


def inspect_images(
    df: pd.DataFrame, image_size: int | None = None, cache_dir: Path | str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Headers first, then a full decode of every image: ``(problems, warnings)``, each
    ``[id, path, reason]`` (:func:`inspect`, without the decodes)."""
    found = inspect(df, image_size, cache_dir)
    return found.problems, found.warnings


def inspect(
    df: pd.DataFrame,
    image_size: int | None = None,
    cache_dir: Path | str | None = None,
    cache: pipeline.DecodeCache | None = None,
) -> Inspection:
    """Headers first, then a full decode of every image, in threads, with a progress line.

    With ``image_size``, the good images, resized, go into the run's decode ``cache`` (None: the
    process's ``pipeline.CACHE``): this check is then the run's only decode of each file. With ``cache_dir`` too, the verdicts and decodes
    are kept on disk for the next notebook of the run, which reads them instead of decoding
    again as long as no image file changed. Without ``image_size`` the images are decoded at
    the duplicates' hash size, for the comparison of images only.

    Decoding every image before training finds a damaged image body (which the header check
    cannot see) and blank, tiny, alpha-only or inverted pictures, so that nothing fails or goes
    wrong mid-series. Decoding runs in threads (OpenCV releases the GIL).
    """
    cols = ["id", "path", "reason"]
    head = image_problems(df)
    rest = df[~df["id"].isin(head["id"])]
    paths = [str(p) for p in rest["path"]]
    cache = pipeline.CACHE if cache is None else cache
    size = image_size or duplicates.HASH_SIDE
    disk = _checks_cache_file(cache_dir, paths, image_size) if cache_dir and image_size else None
    cached = _read_checks(disk, paths) if disk is not None and disk.is_file() else None
    if cached is not None:
        verdicts, images = cached
        cache.remember_verdicts(paths, verdicts)
    else:
        verdicts, images = _decode_all(paths, size, known=bool(image_size), cache=cache)
        if disk is not None:
            _write_checks(disk, paths, verdicts, images, image_size)
    good = [p for p, v in zip(paths, verdicts, strict=True) if not v[0]]
    if good and image_size:  # one stacked array: the pipeline's cache and the file share it
        cache.remember(good, image_size, images)
    problems, warnings = [head], []
    for rid, path, (problem, warning) in zip(rest["id"], rest["path"], verdicts, strict=True):
        if problem:
            problems.append(pd.DataFrame([{"id": rid, "path": path, "reason": problem}]))
        elif warning:
            warnings.append({"id": rid, "path": path, "reason": warning})
    problems = [p for p in problems if not p.empty]
    bad = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=cols)
    good_ids = [rid for rid, v in zip(rest["id"], verdicts, strict=True) if not v[0]]
    if images is None:
        images = np.zeros((0, size, size), np.uint8)
    return Inspection(bad, pd.DataFrame(warnings, columns=cols), good_ids, images)


def _decode_all(
    paths: list[str], size: int, known: bool, cache: pipeline.DecodeCache
) -> tuple[list[tuple], np.ndarray | None]:
    """Decode and judge every file in threads: the verdicts ``(problem, warning)`` of
    ``paths`` and the stacked ``size`` x ``size`` decodes of the usable ones (None if none).
    With ``known``, decodes ``cache`` already holds at this size are reused. A progress line
    counts the files when there are many."""
    workers = min(8, (os.cpu_count() or 1) * 2)
    index = cache.known(size) if known else {}
    bar = None
    if len(paths) > PROGRESS_FROM:
        bar = progress.bar(len(paths), f"checking and decoding images at {size} px")
    judged = []
    with ThreadPoolExecutor(max_workers=workers) as ex:
        for verdict in ex.map(lambda p: pipeline.inspect_image(p, size, index, cache), paths):
            judged.append(verdict)
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    good = [v[2] for v in judged if v[2] is not None]
    return [v[:2] for v in judged], (np.stack(good) if good else None)
