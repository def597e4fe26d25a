"""Splits and subsets: the papers' protocols, seeded, saved as id lists so that every notebook of a
run tests on the same images.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from nblib.core import runfiles
from nblib.data import rsna

SPLITS = ("train", "validation", "test")


PAPER2_COUNTS = (10088, 2323, 200)  # paper 2's random split of the 12,611 training images


OFFICIAL_COUNTS = {"train": 12611, "validation": 1425, "test": 200}  # RSNA's three tables


def split_counts(n: int, protocol: str) -> tuple[int, int, int]:
    """Train/validation/test counts of a seeded random split of ``n`` training images.

    ``random`` (paper 2): 10,088/2,323/200 of 12,611, proportional on other sizes. ``official``
    with only a training table: the official validation/test share of RSNA (1,425 and 200 of
    14,236). Either way the test set gets a floor of min(200, 15% of n) images so that a small
    set still has a test set worth measuring on.
    """
    if protocol == "random":
        fv, ft = PAPER2_COUNTS[1] / rsna.RSNA_TRAIN_SIZE, PAPER2_COUNTS[2] / rsna.RSNA_TRAIN_SIZE
    elif protocol == "official":
        fv, ft = 1425 / 14236, 200 / 14236
    else:
        raise ValueError(f"Unknown split protocol {protocol!r}; use 'official' or 'random'")
    n_test = max(round(n * ft), min(200, round(0.15 * n)))
    n_val = max(1, round(n * fv))
    if n < 3 or n_test + n_val >= n:
        raise ValueError(f"{n} images are too few to split into train/validation/test")
    return n - n_val - n_test, n_val, n_test


def assign_split(
    df: pd.DataFrame, protocol: str, seed: int, together: Iterable[tuple[str, str]] = ()
) -> pd.DataFrame:
    """Give every row a ``split`` under ``protocol``; same seed, same split.

    ``official`` keeps the tables' own splits when validation and test tables exist; when only
    one of them exists it is kept and the other is split off the training table (seeded, the
    official share: :func:`_split_off`); with neither, the training table is split at random
    (see :func:`split_counts`). ``random`` is paper 2's protocol: the training table alone
    (12,611 images in RSNA) split 10,088/2,323/200, proportionally on smaller sets; rows of
    other tables are then left out. ``together``: pairs of ids that are one radiograph (found
    by :mod:`nblib.data.duplicates`); rows split at random follow their twin into its split, so
    that the same image never lands on both sides. What was done is printed and kept in
    ``df.attrs["split_note"]``.
    """
    if protocol not in ("official", "random"):
        raise ValueError(f"Unknown split protocol {protocol!r}; use 'official' or 'random'")
    df = df.copy()
    have = set(df["split"])
    if protocol == "official" and {"validation", "test"} <= have:
        return df
    if protocol == "official" and "train" in have and len(have) == 2:
        return _split_off(df, ({"validation", "test"} - have).pop(), seed, together)
    notes = []
    if (df["split"] == "train").any():
        left_out = df["split"] != "train"
        if left_out.any():
            notes.append(
                f"split '{protocol}': {int(left_out.sum())} row(s) of the validation/test tables "
                "are left out (this protocol splits the training table alone)"
            )
        df = df[df["split"] == "train"].copy()
    order = np.random.default_rng(seed).permutation(np.asarray(df.index))
    n_train, n_val, _ = split_counts(len(order), protocol)
    df.loc[order[:n_train], "split"] = "train"
    df.loc[order[n_train : n_train + n_val], "split"] = "validation"
    df.loc[order[n_train + n_val :], "split"] = "test"
    notes.append(_keep_together(df, order, together))
    return _noted(df, notes)


def _split_off(
    df: pd.DataFrame, missing: str, seed: int, together: Iterable[tuple[str, str]] = ()
) -> pd.DataFrame:
    """Keep the tables' own splits and split the ``missing`` one off the training rows (seeded).

    The official share is the missing table's size against the training table plus it, as RSNA
    drew it: 1,425 of 12,611 + 1,425 for validation (about 10.2%), 200 of 12,611 + 200 for
    test, with the same floor as :func:`split_counts`, so that no row of the given tables is
    discarded. RSNA's 12,411 training and 200 test images give 11,151/1,260/200.
    """
    train = df.index[df["split"] == "train"]
    n = len(train)
    share = OFFICIAL_COUNTS[missing] / (OFFICIAL_COUNTS["train"] + OFFICIAL_COUNTS[missing])
    k = max(round(n * share), min(200, round(0.15 * n)), 1)
    if k >= n:
        raise ValueError(f"{n} training images are too few to split a {missing} set off")
    order = np.random.default_rng(seed).permutation(np.asarray(train))
    df.loc[order[:k], "split"] = missing
    note = (
        f"split 'official': there is no {missing} table, so {k} of the {n} training rows were "
        f"split off as the {missing} set (seeded); the other tables' rows are kept as they are"
    )
    return _noted(df, [note, _keep_together(df, order, together)])


def _noted(df: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """Print what the split did beyond the tables and keep it in ``df.attrs["split_note"]``."""
    note = "; ".join(n for n in notes if n)
    if note:
        print(note)
        df.attrs["split_note"] = note
    return df


def _keep_together(df: pd.DataFrame, order: np.ndarray, together: Iterable[tuple[str, str]]) -> str:
    """Move each id of ``together`` among the rows ``order`` split into the split of its twin
    first in ``order`` (a group of several follows its first member). Changes ``df`` in place;
    returns a note of how many rows moved, or ""."""
    ids = df.loc[order, "id"].tolist()
    pos = {rid: k for k, rid in enumerate(ids)}
    lead: dict[str, str] = {}  # id -> an earlier id of its group (union-find, earliest root)

    def root(rid: str) -> str:
        while lead.get(rid, rid) != rid:
            rid = lead[rid]
        return rid

    for a, b in together:
        if a in pos and b in pos:
            ra, rb = root(a), root(b)
            if ra != rb:
                first, later = (ra, rb) if pos[ra] < pos[rb] else (rb, ra)
                lead[later] = first
    split = dict(zip(ids, df.loc[order, "split"], strict=True))
    row = dict(zip(ids, order, strict=True))
    moved = 0
    for rid in lead:
        target = split[root(rid)]
        if split[rid] != target:
            df.loc[row[rid], "split"] = target
            moved += 1
    if not moved:
        return ""
    return f"{moved} row(s) moved to the split of the same radiograph under another id"


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
