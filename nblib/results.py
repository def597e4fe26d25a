"""Results are files: atomic writers for JSON, CSV, text and figures, and the run's provenance.

Every writer writes to a temporary file in the same folder and renames it into place, so a killed
run never leaves a half-written result behind.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import tempfile
import time
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nblib.config import ROOT

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


@contextmanager
def atomic_path(path: Path | str, suffix: str | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    try:
        yield Path(tmp)
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


def read_json(path: Path | str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Result file {path} does not exist")
    return json.loads(path.read_text())


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
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
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
    cfg, metrics: dict[str, Any], name: str = "metrics.json", **sections: Any
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
