"""A data folder in, the checked and split table out: what every notebook calls first."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nblib.core import config, locks, results, runfiles
from nblib.data import checks, rsna, splitting


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
    notebooks of one run decode each image once between them (:func:`checks.inspect_images`).
    """
    data_dir = Path(data_dir)
    rsna.check_folder(data_dir, "Data folder")
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
        img, warnings = checks.inspect_images(df, image_size, cache_dir)
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
        raise rsna.DataError(str(data_dir), bad)
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
    path = splitting.split_file(cfg)
    df = (
        splitting.apply_saved_split(df, path)
        if path.is_file()
        else splitting.assign_split(df, cfg.split, cfg.seed)
    )
    rows = splitting.subset(df, cfg.max_samples, cfg.seed).reset_index(drop=True)
    return splitting.Split(df, rows, dropped, warnings, data_dir, cfg.max_samples)


def save_split(cfg, split: splitting.Split) -> list[Path]:
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
    path = splitting.split_file(cfg)
    if not path.is_file():
        written.append(results.write_csv(path, split.table[["id", "split"]]))
        if split.table.attrs.get("split_note"):  # what the split did beyond the tables
            note = split.table.attrs["split_note"] + "\n"
            written.append(results.write_text(path.with_suffix(".txt"), note))
    return written
