"""Label tables and images: RSNA's three dialects read into one validated table, splits, subsets.

The table every later step uses has the columns ``[id, path, boneage, male, split]``: ``id`` as a
string, ``path`` absolute, ``boneage`` in months (float), ``male`` bool, ``split`` one of
``train``, ``validation``, ``test``.

Every row and image is checked before training. Problems are collected, not raised one by one: a
single :class:`DataError` lists every bad row or file and what is wrong with it. With
``drop_bad=True`` the bad rows are removed instead and returned in ``df.attrs["dropped"]`` so that
nothing disappears silently.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import hashlib
import io
import os
import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from nblib import config, pipeline, results, runfiles

COLUMNS = ["id", "path", "boneage", "male", "split"]
SPLITS = ("train", "validation", "test")
MAX_AGE_MONTHS = 300.0  # RSNA ages run 1-228 months; anything above 25 years is not a child
MAX_PIXELS = 50_000_000  # 50 megapixels: far above RSNA's largest (~2,500 x 3,000)
MAX_SIDE = 10_000

# The three dialects RSNA published: (id column, age column, sex column, sex kind).
DIALECTS = {
    "kaggle training": ("id", "boneage", "male", "bool"),
    "official validation": ("Image ID", "Bone Age (months)", "male", "bool"),
    "official test": ("Case ID", "Ground truth bone age (months)", "Sex", "MF"),
}
# Table file names of the Kaggle layout and the split each holds.
TABLES = {
    "boneage-training-dataset": "train",
    "boneage-validation-dataset": "validation",
    "boneage-test-dataset": "test",
}
PAPER2_COUNTS = (10088, 2323, 200)  # paper 2's random split of the 12,611 training images
RSNA_TRAIN_SIZE = 12611
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MIN_MEDIAN_AGE = 20.0  # months; a table whose median age is lower holds years, not months
# Other image formats found where a PNG was expected, and what to do about each.
OTHER_FORMATS = {
    ".jpg": "convert it to PNG (only PNG is read)",
    ".jpeg": "convert it to PNG (only PNG is read)",
    ".dcm": "convert the DICOM file to a 16-bit PNG (only PNG is read; see data/README.md)",
    ".tif": "convert it to PNG (only PNG is read)",
    ".tiff": "convert it to PNG (only PNG is read)",
    ".bmp": "convert it to PNG (only PNG is read)",
}
DROP_HINT = (
    "Fix or remove them, or drop them: ./run_all.sh --set drop_bad=true (or drop_bad: true in "
    "the profile's common section, or load_dataset(..., drop_bad=True)); dropped rows are then "
    f"listed in the run's {runfiles.DROPPED_ROWS}."
)


class DataError(ValueError):
    """Bad label rows or image files; ``problems`` is a DataFrame [id, path, reason]."""

    def __init__(self, source: str, problems: pd.DataFrame):
        self.problems = problems
        lines = [
            f"  - id {r.id}: {r.reason}" + (f" ({r.path})" if r.path else "")
            for r in problems.itertuples(index=False)
        ]
        shown = lines[:50] + ([f"  ... and {len(lines) - 50} more"] if len(lines) > 50 else [])
        super().__init__(
            f"{len(problems)} bad row(s) in {source}:\n" + "\n".join(shown) + "\n" + DROP_HINT
        )


def detect_dialect(columns: list[str], source: str) -> str:
    """Name the RSNA dialect of a table from its header, or raise naming the accepted ones."""
    cols = [str(c).strip() for c in columns]
    for name, (id_col, age_col, sex_col, _) in DIALECTS.items():
        if {id_col, age_col, sex_col} <= set(cols):
            return name
    accepted = "; ".join(f"{n}: {', '.join(d[:3])}" for n, d in DIALECTS.items())
    raise ValueError(f"{source}: unrecognised header {cols}. Accepted RSNA dialects: {accepted}")


def _parse_sex(value, kind: str) -> bool | None:
    s = str(value).strip().lower()
    if kind == "MF":
        return {"m": True, "male": True, "f": False, "female": False}.get(s)
    return {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}.get(s)


def _has_images(folder: Path) -> bool:
    """Whether ``folder`` holds image files of any case or format (a wrong one is named later)."""
    exts = {".png", *OTHER_FORMATS}
    return any(p.suffix.lower() in exts for p in folder.iterdir() if p.is_file())


def find_image_dir(table: Path) -> Path:
    """The image folder of a table in the Kaggle layout (flat or nested), or the table's folder."""
    stem = table.with_suffix("")
    for cand in (stem / stem.name, stem):
        if cand.is_dir() and _has_images(cand):
            return cand
    return table.parent


def read_table_text(csv_path: Path) -> str:
    """A label table's text: UTF-8 (with or without BOM), UTF-16 with a BOM, else latin-1.

    Spreadsheet programs save CSV in any of these; a decode problem names the file instead of
    ending in a bare codec error.
    """
    raw = csv_path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{csv_path}: starts like UTF-16 but cannot be decoded ({e.reason} at byte "
                f"{e.start}); save it again as UTF-8 CSV"
            ) from None
    if b"\x00" in raw[:4096]:
        raise ValueError(
            f"{csv_path}: holds NUL bytes, so it is not a text CSV (UTF-16 without a byte-order "
            "mark, or a spreadsheet/binary file); save it as UTF-8 CSV"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # every byte is valid latin-1; ids and numbers are ASCII


def read_labels(
    csv_path: Path | str, image_dir: Path | str | None = None, split: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one label table in any RSNA dialect, collecting every bad row instead of raising.

    Returns ``(table, problems)``: the table ``[id, path, boneage, male, split]`` of the rows
    whose labels parse (image files are not checked here), and ``problems`` ``[id, path, reason]``
    for every row that does not. A table that cannot be read at all (missing, empty, unknown
    header) raises, since no row of it can be trusted.
    """
    csv_path = Path(csv_path)
    if csv_path.is_dir():
        raise ValueError(f"Label table {csv_path} is a folder, not a CSV file")
    if not csv_path.is_file():
        raise FileNotFoundError(f"Label table {csv_path} does not exist")
    text = read_table_text(csv_path)
    try:
        raw = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True
        )
    except pd.errors.EmptyDataError:
        raise ValueError(f"{csv_path}: the label table is empty (no header, no rows)") from None
    except pd.errors.ParserError as e:
        raise ValueError(f"{csv_path}: not a readable CSV table ({e})") from None
    raw.columns = [str(c).strip() for c in raw.columns]
    dialect = detect_dialect(list(raw.columns), str(csv_path))
    if raw.empty:
        raise ValueError(f"{csv_path}: the label table has a header but no rows")
    id_col, age_col, sex_col, kind = DIALECTS[dialect]
    image_dir = Path(image_dir) if image_dir else find_image_dir(csv_path)
    if split is None:
        split = TABLES.get(csv_path.stem.lower(), "train")
    rows, problems = [], []
    ids = raw[id_col].str.strip()
    dup = ids.duplicated(keep=False) & (ids != "")
    for i, (rid, age_s, sex_s) in enumerate(zip(ids, raw[age_col], raw[sex_col], strict=True)):
        line = i + 2  # header is line 1
        path = str((image_dir / f"{rid}.png").resolve()) if rid else ""
        reasons = []
        if not rid:
            reasons.append(f"line {line}: empty id")
        elif dup.iloc[i]:
            reasons.append(f"line {line}: duplicate id {rid}")
        try:
            age = float(str(age_s).strip())
            if np.isnan(age):
                reasons.append(f"line {line}: age is missing (NaN)")
            elif age < 0:
                reasons.append(f"line {line}: negative age {age:g} months")
            elif age > MAX_AGE_MONTHS:
                reasons.append(f"line {line}: absurd age {age:g} months (> {MAX_AGE_MONTHS:g})")
        except ValueError:
            age = float("nan")
            reasons.append(
                f"line {line}: age {age_s!r} is not a number"
                if str(age_s).strip()
                else f"line {line}: age is missing"
            )
        male = _parse_sex(sex_s, kind)
        if male is None:
            expected = "M or F" if kind == "MF" else "True or False"
            reasons.append(f"line {line}: unknown sex value {sex_s!r} (expected {expected})")
        if reasons:
            problems.append(
                {"id": rid or f"<line {line}>", "path": path, "reason": "; ".join(reasons)}
            )
        else:
            rows.append({"id": rid, "path": path, "boneage": age, "male": male, "split": split})
    table = pd.DataFrame(rows, columns=COLUMNS)
    table["boneage"] = table["boneage"].astype(float)
    table["male"] = table["male"].astype(bool)
    if len(table) >= 5 and table["boneage"].median() < MIN_MEDIAN_AGE:
        raise ValueError(
            f"{csv_path}: ages must be in months, and these look like years (median "
            f"{table['boneage'].median():g}, largest {table['boneage'].max():g}; RSNA ages run "
            f"1-228 months). Multiply the {age_col!r} column by 12 and run again."
        )
    return table, pd.DataFrame(problems, columns=["id", "path", "reason"])


def load_labels(
    csv_path: Path | str,
    image_dir: Path | str | None = None,
    split: str | None = None,
    drop_bad: bool = False,
) -> pd.DataFrame:
    """Read one label table in any RSNA dialect into ``[id, path, boneage, male, split]``.

    Image files are not checked (label tables without images work). Bad rows raise one
    :class:`DataError` naming each; with ``drop_bad=True`` they are left out and listed in
    ``df.attrs["dropped"]`` (records: id, path, reason).
    """
    table, problems = read_labels(csv_path, image_dir, split)
    if len(problems) and not drop_bad:
        raise DataError(str(csv_path), problems)
    table.attrs["dropped"] = problems.to_dict("records")
    return table


def load_label_tables(labels_dir: Path | str, drop_bad: bool = False) -> pd.DataFrame:
    """Every label table of a folder (Kaggle names, or its single CSV), images not checked."""
    labels_dir = Path(labels_dir)
    _check_folder(labels_dir, "Label folder")
    tables = [load_labels(csv, drop_bad=drop_bad) for csv in find_tables(labels_dir)]
    df = pd.concat(tables, ignore_index=True)
    df.attrs["dropped"] = [r for t in tables for r in t.attrs.get("dropped", [])]
    return df


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


def inspect_images(
    df: pd.DataFrame, image_size: int | None = None, cache_dir: Path | str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Headers first, then a full decode of every image: ``(problems, warnings)``, each
    ``[id, path, reason]``. With ``image_size``, the good images, resized, go into the
    pipeline's cache: this check is then the run's only decode of each file. With
    ``cache_dir`` too, the verdicts and decodes are kept on disk for the next notebook of the
    run, which reads them instead of decoding again as long as no image file changed.

    Decoding every image before training finds a damaged image body (which the header check
    cannot see) and blank, tiny, alpha-only or inverted pictures, so that nothing fails or goes
    wrong mid-series. Decoding runs in threads (OpenCV releases the GIL).
    """
    cols = ["id", "path", "reason"]
    head = image_problems(df)
    rest = df[~df["id"].isin(head["id"])]
    paths = [str(p) for p in rest["path"]]
    disk = _checks_cache_file(cache_dir, paths, image_size) if cache_dir and image_size else None
    cached = _read_checks(disk, paths) if disk is not None and disk.is_file() else None
    if cached is not None:
        verdicts, images = cached
        good = [p for p, v in zip(paths, verdicts, strict=True) if not v[0]]
        pipeline.remember_verdicts(paths, verdicts)
    else:
        workers = min(8, (os.cpu_count() or 1) * 2)
        with ThreadPoolExecutor(max_workers=workers) as ex:
            known = pipeline.known_images(image_size) if image_size else {}
            judged = list(ex.map(lambda p: pipeline.inspect_image(p, image_size, known), paths))
        verdicts = [v[:2] for v in judged]
        good = [p for p, v in zip(paths, judged, strict=True) if v[2] is not None]
        images = np.stack([v[2] for v in judged if v[2] is not None]) if good else None
        if disk is not None:
            _write_checks(disk, paths, verdicts, images, image_size)
    if good:  # one stacked array: the pipeline's cache and the file above share it
        pipeline.remember(good, image_size, images)
    problems, warnings = [head], []
    for rid, path, (problem, warning) in zip(rest["id"], rest["path"], verdicts, strict=True):
        if problem:
            problems.append(pd.DataFrame([{"id": rid, "path": path, "reason": problem}]))
        elif warning:
            warnings.append({"id": rid, "path": path, "reason": warning})
    problems = [p for p in problems if not p.empty]
    bad = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=cols)
    return bad, pd.DataFrame(warnings, columns=cols)


def find_tables(data_dir: Path) -> list[Path]:
    """Label tables of a dataset folder: the Kaggle names, else the single CSV in it.

    Extensions are matched in any case (``.CSV`` too). A CSV beside the Kaggle-named tables that
    is none of them is refused by name: ignoring it would silently leave its rows out.
    """
    csvs = sorted(p for p in data_dir.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    found = [p for stem in TABLES for p in csvs if p.stem.lower() == stem]
    if found:
        extra = [p.name for p in csvs if p not in found]
        if extra:
            raise ValueError(
                f"{data_dir}: {', '.join(extra)} lies beside the Kaggle-named label tables and "
                "would be ignored. Rename it to the table it holds (boneage-training-dataset.csv, "
                "boneage-validation-dataset.csv or boneage-test-dataset.csv) or move it out of "
                "the folder; see data/README.md"
            )
        return found
    if len(csvs) == 1:
        return csvs
    if not csvs:
        raise FileNotFoundError(
            f"{data_dir}: no label table found (expected boneage-training-dataset.csv "
            "or one CSV in an RSNA dialect); see data/README.md"
        )
    raise ValueError(
        f"{data_dir}: several CSV files and none with a Kaggle RSNA name: "
        f"{', '.join(p.name for p in csvs)}; keep one, or name them as in data/README.md"
    )


def load_dataset(
    data_dir: Path | str,
    drop_bad: bool = False,
    check_images: bool = True,
    image_size: int | None = None,
    cache_dir: Path | str | None = None,
) -> pd.DataFrame:
    """Read every label table of ``data_dir`` and check every image (header, then a full decode).

    Every problem is collected first: one :class:`DataError` then lists every bad table, row and
    file with what is wrong. With ``drop_bad=True`` the bad rows are left out and returned in
    ``df.attrs["dropped"]`` (records: id, path, reason); a table that cannot be read at all
    (unknown header, no rows) still raises, since dropping it would silently drop a whole split.
    Images that are probably wrong but usable (inverted) are kept, printed, and listed in
    ``df.attrs["warnings"]`` (same records). With ``image_size`` the check's decodes, resized,
    are what the pipeline feeds; with ``cache_dir`` as well they are kept on disk, so that the
    notebooks of one run decode each image once between them (:func:`inspect_images`).
    """
    data_dir = Path(data_dir)
    _check_folder(data_dir, "Data folder")
    tables, problems, unreadable = [], [], []
    for csv in find_tables(data_dir):
        try:
            t, p = read_labels(csv)
        except ValueError as e:
            unreadable.append(str(e))
            continue
        tables.append(t)
        problems.append(p.assign(reason=p["reason"].radd(f"{csv.name} ")))
    if unreadable:
        raise ValueError(
            f"{len(unreadable)} label table(s) of {data_dir} cannot be read:\n  - "
            + "\n  - ".join(unreadable)
        )
    df = pd.concat(tables, ignore_index=True)
    cross_dup = df["id"].duplicated(keep=False)
    if cross_dup.any():
        d = df[cross_dup]
        problems.append(
            pd.DataFrame(
                {
                    "id": d["id"],
                    "path": d["path"],
                    "reason": "id appears in more than one label table (" + d["split"] + ")",
                }
            )
        )
        df = df[~cross_dup]
    warnings = pd.DataFrame(columns=["id", "path", "reason"])
    if check_images:
        img, warnings = inspect_images(df, image_size, cache_dir)
        if not img.empty:
            problems.append(img)
            df = df[~df["id"].isin(img["id"])]
    problems = [p for p in problems if not p.empty]
    bad = (
        pd.concat(problems, ignore_index=True)
        if problems
        else pd.DataFrame(columns=["id", "path", "reason"])
    )
    if not bad.empty and not drop_bad:
        raise DataError(str(data_dir), bad)
    if df.empty:
        raise ValueError(
            f"{data_dir}: no usable rows left" + (f" ({len(bad)} dropped)" if len(bad) else "")
        )
    df = df.reset_index(drop=True)
    df.attrs["dropped"] = bad.to_dict("records")  # records, not a DataFrame: pandas compares attrs
    df.attrs["warnings"] = warnings.to_dict("records")
    if len(warnings):
        print(
            f"WARNING: {len(warnings)} image(s) of {data_dir} look wrong but were kept:\n  - "
            + "\n  - ".join(
                f"id {r.id}: {r.reason} ({r.path})" for r in warnings.head(20).itertuples()
            )
        )
    return df


def _check_folder(path: Path, what: str) -> None:
    """Raise naming ``path`` unless it is an existing folder (a file is named as a file)."""
    if path.is_file():
        raise NotADirectoryError(
            f"{what} {path} is a file, not a folder; give the folder that holds the label "
            "tables and images (see data/README.md)"
        )
    if not path.is_dir():
        raise FileNotFoundError(
            f"{what} {path} does not exist; see data/README.md for the layouts accepted"
        )


# --- splits -----------------------------------------------------------------------------------


def split_counts(n: int, protocol: str) -> tuple[int, int, int]:
    """Train/validation/test counts of a seeded random split of ``n`` training images.

    ``random`` (paper 2): 10,088/2,323/200 of 12,611, proportional on other sizes. ``official``
    with only a training table: the official validation/test share of RSNA (1,425 and 200 of
    14,236). Either way the test set gets a floor of min(200, 15% of n) images so that a small
    set still has a test set worth measuring on.
    """
    if protocol == "random":
        fv, ft = PAPER2_COUNTS[1] / RSNA_TRAIN_SIZE, PAPER2_COUNTS[2] / RSNA_TRAIN_SIZE
    elif protocol == "official":
        fv, ft = 1425 / 14236, 200 / 14236
    else:
        raise ValueError(f"Unknown split protocol {protocol!r}; use 'official' or 'random'")
    n_test = max(round(n * ft), min(200, round(0.15 * n)))
    n_val = max(1, round(n * fv))
    if n < 3 or n_test + n_val >= n:
        raise ValueError(f"{n} images are too few to split into train/validation/test")
    return n - n_val - n_test, n_val, n_test


def assign_split(df: pd.DataFrame, protocol: str, seed: int) -> pd.DataFrame:
    """Give every row a ``split`` under ``protocol``; same seed, same split.

    ``official`` keeps the tables' own splits when validation and test tables exist; when only
    one of them exists it is kept and the other is split off the training table (seeded, the
    official share); with neither, the training table is split at random (see
    :func:`split_counts`). ``random`` is paper 2's protocol: the training table alone (12,611
    images in RSNA) split 10,088/2,323/200, proportionally on smaller sets; rows of other tables
    are then left out. What was done is printed and kept in ``df.attrs["split_note"]``.
    """
    if protocol not in ("official", "random"):
        raise ValueError(f"Unknown split protocol {protocol!r}; use 'official' or 'random'")
    df = df.copy()
    have = set(df["split"])
    if protocol == "official" and {"validation", "test"} <= have:
        return df
    if protocol == "official" and "train" in have and len(have) == 2:
        return _split_off(df, ({"validation", "test"} - have).pop(), seed)
    note = ""
    if (df["split"] == "train").any():
        left_out = df["split"] != "train"
        if left_out.any():
            note = (
                f"split '{protocol}': {int(left_out.sum())} row(s) of the validation/test tables "
                "are left out (this protocol splits the training table alone)"
            )
        df = df[df["split"] == "train"].copy()
    order = np.random.default_rng(seed).permutation(np.asarray(df.index))
    n_train, n_val, _ = split_counts(len(order), protocol)
    df.loc[order[:n_train], "split"] = "train"
    df.loc[order[n_train : n_train + n_val], "split"] = "validation"
    df.loc[order[n_train + n_val :], "split"] = "test"
    if note:
        print(note)
        df.attrs["split_note"] = note
    return df


def _split_off(df: pd.DataFrame, missing: str, seed: int) -> pd.DataFrame:
    """Keep the tables' own splits and split the ``missing`` one off the training rows (seeded).

    The official share is used: 200 test or 1,425 validation images of 14,236, with the same
    floor as :func:`split_counts`, so that no row of the given tables is discarded.
    """
    train = df.index[df["split"] == "train"]
    n = len(train)
    share = (200 if missing == "test" else 1425) / 14236
    k = max(round(n * share), min(200, round(0.15 * n)), 1)
    if k >= n:
        raise ValueError(f"{n} training images are too few to split a {missing} set off")
    order = np.random.default_rng(seed).permutation(np.asarray(train))
    df.loc[order[:k], "split"] = missing
    note = (
        f"split 'official': there is no {missing} table, so {k} of the {n} training rows were "
        f"split off as the {missing} set (seeded); the other tables' rows are kept as they are"
    )
    print(note)
    df.attrs["split_note"] = note
    return df


def split_file(cfg) -> Path:
    """Where the split list of ``cfg``'s protocol is kept: ``<output_dir>/splits/<protocol>.csv``."""
    return runfiles.split_list(cfg.output_dir, cfg.split)


def apply_saved_split(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Apply a saved ``id,split`` list; raise if it does not describe exactly this data set.

    Rows of ``df`` the list leaves out are dropped only when the list was saved that way (the
    ``random`` protocol leaves the official validation and test tables out); a list naming ids
    the data set lacks, or missing ids the same protocol would have used, was made for other data.
    """
    saved = pd.read_csv(path, dtype={"id": str, "split": str}, keep_default_na=False)
    fix = (
        f"Delete {path} to make a new split (then re-run every notebook of this output_dir), "
        "or choose another output_dir."
    )
    if list(saved.columns[:2]) != ["id", "split"]:
        raise ValueError(f"Split list {path} must have the columns id,split. {fix}")
    bad_split = sorted(set(saved["split"]) - set(SPLITS))
    if bad_split:
        raise ValueError(f"Split list {path} has unknown split names {bad_split}. {fix}")
    have, want = set(df["id"]), set(saved["id"])
    unknown = sorted(want - have)
    pool = set(df.loc[df["split"] == "train", "id"]) if len(want) < len(have) else have
    unlisted = sorted(pool - want)
    if unknown or unlisted:
        parts = []
        if unknown:
            parts.append(
                f"{len(unknown)} listed id(s) are not in the data set (e.g. {unknown[:5]})"
            )
        if unlisted:
            parts.append(
                f"{len(unlisted)} id(s) of the data set are not listed (e.g. {unlisted[:5]})"
            )
        raise ValueError(
            f"Split list {path} does not match the data set: {'; '.join(parts)}. {fix}"
        )
    m = dict(zip(saved["id"], saved["split"], strict=True))
    df = df[df["id"].isin(want)].copy()
    df["split"] = df["id"].map(m)
    return df


def subset(df: pd.DataFrame, max_samples: int, seed: int) -> pd.DataFrame:
    """Exactly ``max_samples`` rows (0 = all), drawn per split in proportion, seeded.

    Each split keeps at least one row, so a small subset still has a validation and test set.
    """
    if not max_samples or max_samples >= len(df):
        return df
    sizes = df["split"].value_counts()
    quota = sizes / len(df) * max_samples
    k = np.maximum(1, np.floor(quota)).astype(int)
    for s in (quota - np.floor(quota)).sort_values(ascending=False).index:  # largest remainder
        if k.sum() >= max_samples:
            break
        if k[s] < sizes[s]:
            k[s] += 1
    parts = [g.sample(n=int(min(k[s], len(g))), random_state=seed) for s, g in df.groupby("split")]
    return pd.concat(parts).sort_index()


def resolve_data_dir(cfg) -> Path:
    """The dataset folder of ``cfg``; the synthetic default is generated on first use.

    The default is ``DEFAULT_DATA_DIR/phantom-v<version>-n<count>-seed<seed>`` holding
    ``cfg.synthetic_count`` training images and max(10, count // 6) validation and test images.
    """
    if cfg.is_synthetic_default:
        from nblib import synthetic

        n = cfg.synthetic_count
        # the generator's version is in the name: a changed phantom never reuses stale images
        folder = config.DEFAULT_DATA_DIR / f"phantom-v{synthetic.VERSION}-n{n}-seed{cfg.seed}"
        if not (folder / "phantom.json").is_file():
            # Two processes starting at once (two notebooks, two test workers) generate it once:
            # the second waits on the lock and then finds the finished folder.
            with results.file_lock(folder.parent / f".{folder.name}.lock"):
                if not (folder / "phantom.json").is_file():
                    k = max(10, n // 6)
                    synthetic.generate(folder, n, k, k, seed=cfg.seed)
        return folder
    path = Path(cfg.data_dir)
    _check_folder(path, "data_dir")
    return path


@dataclasses.dataclass
class Split:
    """A notebook's data, checked and split: what :func:`split_for` found, for the later steps.

    ``table``: every usable row with its split (what the split list records). ``rows``: the rows
    this notebook uses (``max_samples`` applied), in table order. ``dropped`` and ``warnings``:
    records (id, path, reason) of the rows the checks left out and the images kept despite a
    warning. ``parts``: ``rows`` cut into its train, validation and test tables.
    """

    table: pd.DataFrame
    rows: pd.DataFrame
    dropped: list[dict]
    warnings: list[dict]
    data_dir: Path
    max_samples: int = 0

    @functools.cached_property
    def parts(self) -> dict[str, pd.DataFrame]:
        """The train, validation and test tables (none may be empty)."""
        parts = {s: self.rows[self.rows["split"] == s].reset_index(drop=True) for s in SPLITS}
        empty = [s for s, part in parts.items() if part.empty]
        if empty:
            raise ValueError(
                f"The {', '.join(empty)} split is empty; give more images "
                f"(max_samples={self.max_samples})"
            )
        return parts


def split_for(cfg) -> Split:
    """Load and check ``cfg``'s data, split it (by the saved split list when there is one, else
    by ``cfg.split``, seeded) and take ``cfg.max_samples`` rows. Writes only the checks' cache
    (``<output_dir>/cache/``, which the run's next notebook reads instead of decoding again):
    :func:`save_split` writes the split list and what the checks found."""
    data_dir = resolve_data_dir(cfg)
    df = load_dataset(
        data_dir,
        drop_bad=cfg.drop_bad,
        image_size=cfg.image_size,
        cache_dir=Path(cfg.output_dir) / runfiles.IMAGE_CHECKS,
    )
    dropped = df.attrs.pop("dropped", [])
    warnings = df.attrs.pop("warnings", [])
    path = split_file(cfg)
    df = apply_saved_split(df, path) if path.is_file() else assign_split(df, cfg.split, cfg.seed)
    rows = subset(df, cfg.max_samples, cfg.seed).reset_index(drop=True)
    return Split(df, rows, dropped, warnings, data_dir, cfg.max_samples)


def save_split(cfg, split: Split) -> list[Path]:
    """Write the split list (``splits/<protocol>.csv``, once: the first notebook to split the
    data keeps it for the others; with a note of what the split did beyond the tables) and, in
    the notebook's folder, the dropped rows and the warnings of the checks. Returns the paths."""
    written = []
    if split.dropped:
        path = results.write_csv(cfg.run_dir / runfiles.DROPPED_ROWS, pd.DataFrame(split.dropped))
        print(f"Dropped {len(split.dropped)} bad row(s); listed in {path}")
        written.append(path)
    if split.warnings:
        path = results.write_csv(cfg.run_dir / runfiles.DATA_WARNINGS, pd.DataFrame(split.warnings))
        print(f"WARNING: {len(split.warnings)} image(s) kept despite a warning; listed in {path}")
        written.append(path)
    path = split_file(cfg)
    if not path.is_file():
        written.append(results.write_csv(path, split.table[["id", "split"]]))
        if split.table.attrs.get("split_note"):  # what the split did beyond the tables
            note = split.table.attrs["split_note"] + "\n"
            written.append(results.write_text(path.with_suffix(".txt"), note))
    return written


def load_for(cfg) -> pd.DataFrame:
    """The rows a training notebook uses: loaded, checked, split, subset (:func:`split_for`'s
    ``rows``, with ``attrs`` dropped, warnings and data_dir). Writes no results."""
    split = split_for(cfg)
    df = split.rows
    df.attrs["dropped"] = split.dropped
    df.attrs["warnings"] = split.warnings
    df.attrs["data_dir"] = str(split.data_dir)
    return df


def label_version(test: pd.DataFrame) -> dict:
    """Which test labels a score was computed against, so that scores can be compared.

    At the time of the RSNA 2017 challenge two versions of the test-200 ground truth circulated,
    and published test-200 numbers mix them. A score names its labels here: how many there are,
    whether they are whole months or fractional (the official table's
    ``Ground truth bone age (months)`` holds fractional values, e.g. 168.93), and a SHA-1 of the
    sorted ``id,months`` pairs that tells any two label tables apart.
    """
    pairs = sorted(zip(test["id"].astype(str), test["boneage"].astype(float), strict=True))
    text = "\n".join(f"{i},{v:.4f}" for i, v in pairs)
    whole = bool(np.allclose(test["boneage"], np.round(test["boneage"])))
    return {
        "n": len(pairs),
        "values": "whole months" if whole else "fractional months",
        "sha1": hashlib.sha1(text.encode()).hexdigest()[:12],
    }
