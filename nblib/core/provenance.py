"""Where a result comes from: package versions, git revision, hardware, and the ``metrics.json``
that carries them beside a notebook's parameters and metrics.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from nblib.core import results, runfiles

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


VECTOR_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
)


def cpu(cpuinfo: str | None = None) -> dict[str, Any]:
    """The CPU's model name and which vector instruction sets it has (Linux ``/proc/cpuinfo``).

    Floating-point results of the same code differ between CPUs whose kernels take other paths
    (AVX2 against AVX-512 or AMX), so a result names the one it came from."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return {"model": platform.processor() or None, "vector_flags": None}
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {
        "model": fields.get("model name") or platform.processor() or None,
        "vector_flags": [f for f in VECTOR_FLAGS if f in flags],
    }


def hardware() -> dict[str, Any]:
    info: dict[str, Any] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cpu": cpu(),
        "platform": platform.platform(),
    }
    try:
        import keras

        from nblib.core import runtime

        info["backend"] = keras.backend.backend()
        info["gpus"] = runtime.accelerators()
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
    return results.write_json(cfg.run_dir / name, doc)
