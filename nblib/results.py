"""Results are files: atomic writers for JSON, CSV, text and figures, and the run's provenance.

Every writer writes to a temporary file in the same folder and renames it into place, so a killed
run never leaves a half-written result behind. The readers name the file and what is wrong with it
when a result file is damaged, and read ids as strings (``01377`` stays ``01377``). An output
folder is locked while a run writes to it (:func:`lock_folder`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nblib import runfiles

# The checkout this package lives in, for its git revision (git finds the repository from any
# folder inside it). Not config.ROOT: config writes through this module, never the reverse.
PACKAGE_DIR = Path(__file__).resolve().parent

PACKAGES = (
    "tensorflow",
    "keras",
    "jax",
    "jaxlib",
    "torch",
    "numpy",
    "pandas",
    "opencv-python",
    "scikit-learn",
    "matplotlib",
    "seaborn",
    "papermill",
)


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


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision() -> str | None:
    try:
        rev = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if rev.returncode != 0:
        return None
    return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }
    try:
        import keras

        from nblib import training

        info["backend"] = keras.backend.backend()
        info["gpus"] = training.accelerators()
    except Exception:  # noqa: BLE001 - provenance must never fail a run
        info["gpus"] = []
    return info


def provenance() -> dict[str, Any]:
    """Package versions, git revision, hardware and time: stored in every ``metrics.json``."""
    return {
        "versions": package_versions(),
        "git_revision": git_revision(),
        "hardware": hardware(),
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def versions_report() -> str:
    """One line of versions for a notebook's import cell."""
    return ", ".join(f"{k} {v}" for k, v in package_versions().items())


def duration(seconds: float | None) -> str:
    """A time for people: ``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``-`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def write_metrics(
    cfg, metrics: dict[str, Any], name: str = runfiles.METRICS, **sections: Any
) -> Path:
    """Write ``<run_dir>/metrics.json`` holding the config, the metrics, extra sections and provenance."""
    doc = {
        "notebook": cfg.notebook,
        "profile": cfg.profile,
        "params": cfg.to_dict(),
        "metrics": metrics,
    }
    doc.update(sections)
    doc["provenance"] = provenance()
    return write_json(cfg.run_dir / name, doc)


@contextmanager
def file_lock(path: Path | str):
    """Hold an exclusive ``flock`` on ``path`` while the block runs, waiting for any holder.

    For work that must happen once however many processes ask at the same moment (generating
    the default phantom); the kernel releases the lock if its holder is killed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield path


class FolderLocked(RuntimeError):
    """Another run holds the output folder's lock."""


@contextmanager
def lock_folder(folder: Path | str):
    """Hold ``<folder>/.lock`` while the block runs; raise :class:`FolderLocked` if held.

    The lock is an ``flock`` on the open file, so the kernel releases it when the holder exits
    or is killed: a stale lock can never block a later run. The file records the holder's pid,
    host and start time so that a refused run can say who holds it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    f = open(path, "a+")  # noqa: SIM115 - held open for the life of the lock
    try:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "an unknown process"
            raise FolderLocked(
                f"Output folder {folder} is in use by another run ({holder}). Wait for it to "
                "finish, stop it, or choose another output folder (--out)."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(
            f"pid {os.getpid()} on host {socket.gethostname()}, started "
            f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        f.flush()
        yield path
    finally:
        f.close()  # closing releases the flock
