"""RSNA's label tables, in any of its three header dialects, read into one validated table.

The table every later step uses has the columns ``[id, path, boneage, male, split]``: ``id`` as a
string, ``path`` absolute, ``boneage`` in months (float), ``male`` bool, ``split`` one of
``train``, ``validation``, ``test``. Problems are collected, not raised one by one: a single
:class:`DataError` lists every bad row and what is wrong with it. With ``drop_bad=True`` the bad
rows are removed instead and returned in ``df.attrs["dropped"]`` so that nothing disappears
silently.
"""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.core import runfiles
from nblib.data import checks

COLUMNS = ["id", "path", "boneage", "male", "split"]


MAX_AGE_MONTHS = 300.0  # RSNA ages run 1-228 months; anything above 25 years is not a child


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


RSNA_TRAIN_SIZE = 12611


MIN_MEDIAN_AGE = 20.0  # months; a table whose median age is lower holds years, not months


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
    exts = {".png", *checks.OTHER_FORMATS}
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
    raw, dialect = _read_raw(csv_path)
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
        age = _parse_age(age_s, line, reasons)
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
    _refuse_years(table, csv_path, age_col)
    return table, pd.DataFrame(problems, columns=["id", "path", "reason"])


def _read_raw(csv_path: Path) -> tuple[pd.DataFrame, str]:
    """The table's cells as text and its dialect; a table that cannot be read at all raises."""
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
    return raw, dialect


def _parse_age(age_s, line: int, reasons: list[str]) -> float:
    """An age cell in months; what is wrong with it is appended to ``reasons``."""
    try:
        age = float(str(age_s).strip())
    except ValueError:
        reasons.append(
            f"line {line}: age {age_s!r} is not a number"
            if str(age_s).strip()
            else f"line {line}: age is missing"
        )
        return float("nan")
    if np.isnan(age):
        reasons.append(f"line {line}: age is missing (NaN)")
    elif age < 0:
        reasons.append(f"line {line}: negative age {age:g} months")
    elif age > MAX_AGE_MONTHS:
        reasons.append(f"line {line}: absurd age {age:g} months (> {MAX_AGE_MONTHS:g})")
    return age


def _refuse_years(table: pd.DataFrame, csv_path: Path, age_col: str) -> None:
    """A table whose ages look like years, not months, is refused with the fix named."""
    if len(table) >= 5 and table["boneage"].median() < MIN_MEDIAN_AGE:
        raise ValueError(
            f"{csv_path}: ages must be in months, and these look like years (median "
            f"{table['boneage'].median():g}, largest {table['boneage'].max():g}; RSNA ages run "
            f"1-228 months). Multiply the {age_col!r} column by 12 and run again."
        )


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
    check_folder(labels_dir, "Label folder")
    tables = [load_labels(csv, drop_bad=drop_bad) for csv in find_tables(labels_dir)]
    df = pd.concat(tables, ignore_index=True)
    df.attrs["dropped"] = [r for t in tables for r in t.attrs.get("dropped", [])]
    return df


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


def check_folder(path: Path, what: str) -> None:
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
