"""A data folder in, the checked and split table out: what every notebook calls first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nblib.core import config, locks, results, runfiles
from nblib.data import checks, duplicates, rsna, splitting

COLUMNS = ["id", "path", "reason"]  # of every problem and warning record


def load_dataset(
    data_dir: Path | str,
    drop_bad: bool = False,
    check_images: bool = True,
    image_size: int | None = None,
    cache_dir: Path | str | None = None,
) -> pd.DataFrame:
    """Read every label table of ``data_dir`` and check every image (header, then a full decode).

    Every problem is collected first: one :class:`rsna.DataError` then lists every bad table, row and
    file with what is wrong. With ``drop_bad=True`` the bad rows are left out and returned in
    ``df.attrs["dropped"]`` (records: id, path, reason); a table that cannot be read at all
    (unknown header, no rows) still raises, since dropping it would silently drop a whole split.
    Images that are probably wrong but usable (inverted) are kept, printed, and listed in
    ``df.attrs["warnings"]`` (same records). With ``image_size`` the check's decodes, resized,
    are what the pipeline feeds; with ``cache_dir`` as well they are kept on disk, so that the
    notebooks of one run decode each image once between them (:func:`checks.inspect`).

    Leakage is refused. An id in two label tables (a test image in the training table) is
    refused by id, before any image is decoded. The same radiograph under two ids
    (:mod:`nblib.data.duplicates`) is refused when its ids are in different tables, and warned
    about within one; the pairs are kept in ``df.attrs["duplicates"]`` so that a split keeps
    them together. ``drop_bad`` drops the copy in the lower split (train < validation < test),
    so that the test set stays whole.
    """
    data_dir = Path(data_dir)
    rsna.check_folder(data_dir, "Data folder")
    df, problems = _read_tables(data_dir)
    df, leaked = _ids_in_two_tables(df)
    problems.append(leaked)
    if not leaked.empty and not drop_bad:  # decided by ids alone: no image needs decoding
        raise rsna.DataError(str(data_dir), _collected(problems))
    warnings = pd.DataFrame(columns=COLUMNS)
    pairs = pd.DataFrame(columns=duplicates.PAIR_COLUMNS)
    if check_images:
        df, found, warnings, pairs = _check_images(df, image_size, cache_dir)
        problems.append(found)
    bad = _collected(problems)
    if not bad.empty and not drop_bad:
        raise rsna.DataError(str(data_dir), bad)
    if df.empty:
        raise ValueError(
            f"{data_dir}: no usable rows left" + (f" ({len(bad)} dropped)" if len(bad) else "")
        )
    df = df.reset_index(drop=True)
    kept = pairs["id_a"].isin(df["id"]) & pairs["id_b"].isin(df["id"])
    df.attrs["dropped"] = bad.to_dict("records")  # records, not a DataFrame: pandas compares attrs
    df.attrs["warnings"] = warnings.to_dict("records")
    df.attrs["duplicates"] = pairs[kept].to_dict("records")
    if len(warnings):
        print(
            f"WARNING: {len(warnings)} image(s) of {config.shown(data_dir)} look wrong but were kept:\n  - "
            + "\n  - ".join(
                f"id {r.id}: {r.reason} ({config.shown(r.path)})"
                for r in warnings.head(20).itertuples()
            )
        )
    return df


def _check_images(
    df: pd.DataFrame, image_size: int | None, cache_dir: Path | str | None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Decode and judge every image once, then compare them: ``(df without the bad rows,
    problems, warnings, duplicate pairs)``. Bad images and the lower copy of a radiograph in two
    tables are problems; the same radiograph twice in one table is a warning."""
    found = checks.inspect(df, image_size, cache_dir)
    df = df[~df["id"].isin(found.problems["id"])]
    pairs = duplicates.find_pairs(found.ids, found.images)
    across = duplicates.across_splits(pairs, df)
    df = df[~df["id"].isin(across["id"])]
    warnings = _collected([found.warnings, duplicates.within_splits(pairs, df)])
    return df, _collected([found.problems, across]), warnings, pairs


def _read_tables(data_dir: Path) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """Every label table of ``data_dir`` in one table, and the problems of their rows (each
    reason prefixed with its table's file name). A table that cannot be read raises, naming
    every such table."""
    tables, problems, unreadable = [], [], []
    for csv in rsna.find_tables(data_dir):
        try:
            t, p = rsna.read_labels(csv)
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
    return pd.concat(tables, ignore_index=True), problems


def _ids_in_two_tables(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``df`` without the rows whose id is also in a higher table (train < validation < test),
    and those rows as problems: one image in two splits is leakage, a test image in the training
    table the worst kind. The copy in the highest table is the one kept."""
    twice = df["id"].duplicated(keep=False)
    if not twice.any():
        return df, pd.DataFrame(columns=COLUMNS)
    rank = df["split"].map(duplicates.SPLIT_RANK)
    top = rank[twice].groupby(df.loc[twice, "id"]).transform("max")
    low = rank[twice] < top
    d = df[twice][low]
    kept = df[twice][~low].set_index("id")["split"]
    reasons = [
        f"id {rid} is in the {split} table and also in the {kept[rid]} table: the same image in "
        f"{split} and {kept[rid]} is {split}/{kept[rid]} leakage. Remove it from the {split} table"
        for rid, split in zip(d["id"], d["split"], strict=True)
    ]
    leaked = pd.DataFrame({"id": d["id"], "path": d["path"], "reason": reasons})
    return df.drop(index=d.index), leaked


def _collected(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """``[id, path, reason]`` records of several checks in one table (empty ones left out)."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def resolve_data_dir(cfg) -> Path:
    """The dataset folder of ``cfg``; the synthetic default is generated on first use.

    The default is ``DEFAULT_DATA_DIR/phantom-v<version>-n<count>-seed<seed>`` holding
    ``cfg.synthetic_count`` training images and max(10, count // 6) validation and test images.
    """
    if cfg.is_synthetic_default:
        from nblib.data import phantom

        n = cfg.synthetic_count
        # the generator's version is in the name: a changed phantom never reuses stale images
        folder = config.DEFAULT_DATA_DIR / f"phantom-v{phantom.VERSION}-n{n}-seed{cfg.seed}"
        if not (folder / "phantom.json").is_file():
            # Two processes starting at once (two notebooks, two test workers) generate it once:
            # the second waits on the lock and then finds the finished folder.
            with locks.file_lock(folder.parent / f".{folder.name}.lock"):
                if not (folder / "phantom.json").is_file():
                    k = max(10, n // 6)
                    phantom.generate(folder, n, k, k, seed=cfg.seed)
        return folder
    path = Path(cfg.data_dir)
    rsna.check_folder(path, "data_dir")
    return path


def load_for(cfg) -> pd.DataFrame:
    """The rows a training notebook uses: loaded, checked, split, subset (:func:`split_for`'s
    ``rows``, with ``attrs`` dropped, warnings and data_dir). Writes no results."""
    split = split_for(cfg)
    df = split.rows
    df.attrs["dropped"] = split.dropped
    df.attrs["warnings"] = split.warnings
    df.attrs["data_dir"] = str(split.data_dir)
    return df


def split_for(cfg) -> splitting.Split:
    """Load and check ``cfg``'s data, split it (by the saved split list when there is one, else
    by ``cfg.split``, seeded) and take ``cfg.max_samples`` rows. Writes only the checks' cache
    (``<output_dir>/cache/``, which the run's next notebook reads instead of decoding again):
    :func:`save_split` writes the split list and what the checks found.

    The same radiograph under two ids is kept in one split; one that a saved split list puts
    in two splits is refused (dropped from the lower split with ``cfg.drop_bad``).
    """
    data_dir = resolve_data_dir(cfg)
    df = load_dataset(
        data_dir,
        drop_bad=cfg.drop_bad,
        image_size=cfg.image_size,
        cache_dir=Path(cfg.output_dir) / runfiles.IMAGE_CHECKS,
    )
    dropped = df.attrs.pop("dropped", [])
    warnings = df.attrs.pop("warnings", [])
    pairs = pd.DataFrame(df.attrs.pop("duplicates", []), columns=duplicates.PAIR_COLUMNS)
    path = splitting.split_file(cfg)
    saved = path.is_file()
    twins = list(zip(pairs["id_a"], pairs["id_b"], strict=True))
    df = (
        splitting.apply_saved_split(df, path)
        if saved
        else splitting.assign_split(df, cfg.split, cfg.seed, twins)
    )
    leaked = duplicates.across_splits(pairs, df)
    if not leaked.empty:
        how = f"the split list {path}" if saved else f"the '{cfg.split}' split"
        if not cfg.drop_bad:
            raise rsna.DataError(f"{data_dir} as split by {how}", leaked)
        df = df[~df["id"].isin(leaked["id"])]
        dropped = dropped + leaked.to_dict("records")
    rows = splitting.subset(df, cfg.max_samples, cfg.seed).reset_index(drop=True)
    return splitting.Split(df, rows, dropped, warnings, data_dir, cfg.max_samples)


def save_split(cfg, split: splitting.Split) -> list[Path]:
    """Write the split list (``splits/<protocol>.csv``, once: the first notebook to split the
    data keeps it for the others; with a note of what the split did beyond the tables) and, in
    the notebook's folder, the dropped rows and the warnings of the checks. Returns the paths."""
    written = []
    if split.dropped:
        path = results.write_csv(cfg.run_dir / runfiles.DROPPED_ROWS, pd.DataFrame(split.dropped))
        print(
            f"Dropped {len(split.dropped)} bad row(s); listed in {config.shown(path, cfg.output_dir)}"
        )
        written.append(path)
    if split.warnings:
        path = results.write_csv(cfg.run_dir / runfiles.DATA_WARNINGS, pd.DataFrame(split.warnings))
        shown = config.shown(path, cfg.output_dir)
        print(f"WARNING: {len(split.warnings)} image(s) kept despite a warning; listed in {shown}")
        written.append(path)
    path = splitting.split_file(cfg)
    if not path.is_file():
        written.append(results.write_csv(path, split.table[["id", "split"]]))
        if split.table.attrs.get("split_note"):  # what the split did beyond the tables
            note = split.table.attrs["split_note"] + "\n"
            written.append(results.write_text(path.with_suffix(".txt"), note))
    return written
