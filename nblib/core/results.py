"""Results are files: atomic writers and careful readers for JSON, CSV, text and figures.

Every writer writes to a temporary file in the same folder and renames it into place, so a killed
run never leaves a half-written result behind. The readers name the file and what is wrong with it
when a result file is damaged, and read ids as strings (``01377`` stays ``01377``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nblib.core import runfiles


def _umask() -> int:
    """The process's umask (read once, at import: ``os.umask`` can only be read by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file: others may read the results


@contextmanager
def atomic_path(path: Path | str, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    The file gets the permissions a plainly written file would (``mkstemp`` makes it private), so
    that a run folder shared with a group or served by JupyterHub stays readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.exists(tmp):
            os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _jsonable(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_jsonable(v) for v in o]
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating | float):
        f = float(o)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, np.bool_):
        return bool(o)
    return o


def write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as indented JSON (NaN and inf become null), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")
    return Path(path)


class ResultError(ValueError):
    """A result file that exists but is damaged: the message names the file and what is wrong."""


def read_json(path: Path | str) -> Any:
    """A JSON result file; a damaged one raises :class:`ResultError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Result file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ResultError(
            f"Result file {path} is damaged: not valid JSON ({e.msg} at line {e.lineno}, "
            f"column {e.colno}). Run the notebook that writes it again."
        ) from None
    except UnicodeDecodeError as e:
        raise ResultError(
            f"Result file {path} is damaged: not UTF-8 text ({e.reason}). Run the notebook that "
            "writes it again."
        ) from None


def read_csv(path: Path | str, **kwargs: Any) -> pd.DataFrame:
    """A CSV result file (a history, predictions, a table) with ids read as strings.

    ``kwargs`` go to :func:`pandas.read_csv`; ``dtype`` defaults to ``{"id": str}`` so that an id
    such as ``01377`` keeps its leading zero. A damaged file (empty, cut short mid-line, not CSV,
    not text) raises :class:`ResultError` naming it instead of a bare parser traceback.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Result file {path} does not exist")
    kwargs.setdefault("dtype", {"id": str})
    again = "Run the notebook that writes it again."
    raw = path.read_bytes()
    if not raw.strip():
        raise ResultError(f"Result file {path} is damaged: it is empty. {again}")
    if not raw.endswith(b"\n"):
        raise ResultError(
            f"Result file {path} is damaged: it ends in the middle of a line (cut short). {again}"
        )
    try:
        return pd.read_csv(path, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultError(f"Result file {path} is damaged: {reason}. {again}") from None


def write_csv(path: Path | str, df: pd.DataFrame, index: bool = False) -> Path:
    """Write a DataFrame as CSV, atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Path(path)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_figure(fig, path: Path | str, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG, atomically."""
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format="png")
    return Path(path)


def save_figures(figures: dict, folder: Path | str) -> list[Path]:
    """Save each ``name: figure`` as ``<folder>/<name>.png`` (atomically)."""
    return [save_figure(fig, Path(folder) / runfiles.figure(name)) for name, fig in figures.items()]
