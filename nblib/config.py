"""Run configuration: one frozen, validated dataclass built from a profile and a notebook's parameters.

Profiles live in ``params/<profile>.yaml``. Each file has a ``common`` section and one section per
notebook (keyed by the notebook's stem, e.g. ``03_resnet50``); the notebook section overrides
``common``, and parameters passed to :func:`make` (a notebook's ``parameters`` cell, or papermill)
override both, except where they are ``None``, which means "take the profile's value".
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nblib import runfiles

ROOT = Path(__file__).resolve().parents[1]
PARAMS_DIR = ROOT / "params"
PROFILES = ("smoke", "cpu", "sample", "paper", "paper-lite")
DEFAULT_DATA_DIR = ROOT / "data" / "synthetic"
SPLIT_PROTOCOLS = ("official", "random")
NOTEBOOK_DIR = ROOT / "notebooks"
MAX_BATCH_SIZE = 4096  # larger batches do not fit any accelerator at these image sizes
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are unsigned 32-bit
SET_ENV = "BONEAGE_SET"  # JSON object of parameters set by ``run_all.sh --set key=value``


@dataclass(frozen=True)
class Config:
    """Everything a notebook needs to know to run; saved next to every result.

    Paths are absolute. ``data_dir`` pointing at ``DEFAULT_DATA_DIR`` means the embedded synthetic
    data set, generated on first use with ``synthetic_count`` training images.
    """

    notebook: str
    profile: str = "cpu"
    seed: int = 42
    data_dir: Path = DEFAULT_DATA_DIR
    output_dir: Path = ROOT / "runs" / "cpu"
    image_size: int = 256
    width: float = 1.0
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_samples: int = 0  # 0 = every image
    split: str = "official"  # "official" (paper 1) or "random" (paper 2's 10,088/2,323/200)
    drop_bad: bool = False  # drop bad rows (recorded in the run's results) instead of raising
    patience: int = 0  # early-stopping patience in epochs; 0 = off
    lr_schedule: str = "constant"  # "constant" | "cosine" | "plateau"
    warmup_epochs: int = 0
    mixed_precision: str = "auto"  # "auto" (on when a GPU is visible) | "on" | "off"
    xla: str = "auto"  # "auto" (on when a GPU is visible) | "on" | "off"
    strategy: str = "auto"  # "auto" | "default" | "mirrored" | "multiworker"
    deterministic: bool = True  # deterministic kernels: same seed, same numbers (see training)
    bn_momentum: float = 0.99  # BatchNorm moving-average momentum (Keras' default, the papers')
    clipnorm: float = 0.0  # clip each step's gradient norm at this value; 0 = off (the papers')
    cache: str = "memory"  # "memory" | "disk" | "none": where decoded images are cached
    synthetic_count: int = 1200  # training images of the embedded synthetic data set
    ae_stages: tuple[int, ...] = (300, 200, 100, 150, 150)  # paper 2, Table 2
    baselines: tuple[str, ...] = ("xception", "vgg16", "inception_v3", "mobilenet")
    baseline_sizes: tuple[int, ...] = (256, 450)
    baseline_width: float = 1.0  # alpha for MobileNet; other backbones have no width
    baseline_epochs: int = 10
    baseline_max_samples: int = 0
    baseline_weights: str = "imagenet"  # "imagenet" | "none"
    extra: dict[str, Any] = field(default_factory=dict)  # notebook-specific, free-form

    def __post_init__(self) -> None:
        problems = []
        if self.profile not in PROFILES:
            problems.append(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if not (32 <= self.image_size <= 1024):
            problems.append(f"image_size must be between 32 and 1024 pixels, got {self.image_size}")
        if not (0 < self.width <= 4):
            problems.append(f"width must be a multiplier in (0, 4], got {self.width}")
        if self.epochs < 1:
            problems.append(f"epochs must be at least 1, got {self.epochs}")
        if not (1 <= self.batch_size <= MAX_BATCH_SIZE):
            problems.append(
                f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {self.batch_size}"
            )
        if not (0 <= self.seed <= MAX_SEED):
            problems.append(f"seed must be between 0 and 2**32-1 ({MAX_SEED}), got {self.seed}")
        if not (0 < self.learning_rate < 1):
            problems.append(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        if self.max_samples < 0:
            problems.append(f"max_samples must be 0 (all) or positive, got {self.max_samples}")
        if self.split not in SPLIT_PROTOCOLS:
            problems.append(f"split must be one of {SPLIT_PROTOCOLS}, got {self.split!r}")
        if self.patience < 0:
            problems.append(f"patience must be 0 (off) or positive, got {self.patience}")
        if self.lr_schedule not in ("constant", "cosine", "plateau"):
            problems.append(
                f"lr_schedule must be constant, cosine or plateau, got {self.lr_schedule!r}"
            )
        for name in ("mixed_precision", "xla"):
            if getattr(self, name) not in ("auto", "on", "off"):
                problems.append(f"{name} must be auto, on or off, got {getattr(self, name)!r}")
        if self.strategy not in ("auto", "default", "mirrored", "multiworker"):
            problems.append(
                f"strategy must be auto, default, mirrored or multiworker, got {self.strategy!r}"
            )
        if not (0 <= self.bn_momentum < 1):
            problems.append(f"bn_momentum must be in [0, 1), got {self.bn_momentum}")
        if self.clipnorm < 0:
            problems.append(f"clipnorm must be 0 (off) or positive, got {self.clipnorm}")
        if not isinstance(self.deterministic, bool):
            problems.append(f"deterministic must be true or false, got {self.deterministic!r}")
        if self.cache not in ("memory", "disk", "none"):
            problems.append(f"cache must be memory, disk or none, got {self.cache!r}")
        if self.synthetic_count < 10:
            problems.append(f"synthetic_count must be at least 10, got {self.synthetic_count}")
        if not self.ae_stages or any(int(s) < 1 for s in self.ae_stages):
            problems.append(
                f"ae_stages must be a non-empty list of positive epoch counts, got {self.ae_stages}"
            )
        if self.baseline_weights not in ("imagenet", "none"):
            problems.append(
                f"baseline_weights must be imagenet or none, got {self.baseline_weights!r}"
            )
        if problems:
            raise ValueError(
                "Invalid configuration for " + self.notebook + ":\n  - " + "\n  - ".join(problems)
            )

    @property
    def run_dir(self) -> Path:
        """The notebook's own results folder, ``<output_dir>/<notebook>``."""
        return self.output_dir / self.notebook

    @property
    def is_synthetic_default(self) -> bool:
        return Path(self.data_dir).resolve() == DEFAULT_DATA_DIR.resolve()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, Path):
                d[k] = str(v)
            elif isinstance(v, tuple):
                d[k] = list(v)
        return d

    def save(self, path: Path | None = None) -> Path:
        """Write the configuration as JSON (atomically) into the run directory."""
        from nblib import results

        path = Path(path) if path else self.run_dir / runfiles.CONFIG
        results.write_json(path, self.to_dict())
        return path


def notebook_stems() -> list[str]:
    """The series' notebooks by stem (``03_resnet50``), read from the notebooks folder."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def load_profile(profile: str, notebook: str | None = None) -> dict[str, Any]:
    """Return the merged ``common`` + notebook section of ``params/<profile>.yaml``.

    A section that names no notebook (a typo such as ``03_resnet-50``) is refused rather than
    skipped, since its settings would otherwise silently not apply; so is YAML that does not parse.
    """
    if profile not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    path = PARAMS_DIR / f"{profile}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"Profile file {path} is missing")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ValueError(
            f"Profile file {path} is not valid YAML{where}: {problem}. Fix that line."
        ) from None
    except UnicodeDecodeError as e:
        raise ValueError(f"Profile file {path} is not UTF-8 text ({e.reason})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"Profile file {path} must hold sections (common:, 03_resnet50:, ...)")
    valid = ["common", *notebook_stems()]
    problems = []
    for name, section in doc.items():
        if str(name) not in valid:
            close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown section {name!r}{hint}")
        elif section is not None and not isinstance(section, dict):
            problems.append(f"section {name!r} must hold name: value lines, got {section!r}")
    if problems:
        raise ValueError(
            f"Profile file {path}:\n  - "
            + "\n  - ".join(problems)
            + f"\nSections are 'common' and the notebooks: {', '.join(valid[1:])}."
        )
    merged = dict(doc.get("common") or {})
    if notebook:
        merged.update(doc.get(notebook) or {})
    return merged


def env_overrides() -> dict[str, Any]:
    """Parameters set with ``run_all.sh --set key=value``, passed in ``BONEAGE_SET`` (JSON)."""
    raw = os.environ.get(SET_ENV, "").strip()
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"{SET_ENV} must be a JSON object ({e}); got {raw[:200]!r}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{SET_ENV} must be a JSON object of name: value, got {raw[:200]!r}")
    return doc


_TUPLE_FIELDS = {f.name for f in dataclasses.fields(Config) if "tuple" in str(f.type)}
_FIELDS = {f.name for f in dataclasses.fields(Config)}
_TYPED = {
    f.name: {"int": int, "float": float, "bool": bool}[str(f.type)]
    for f in dataclasses.fields(Config)
    if str(f.type) in ("int", "float", "bool")
}


def _convert(name: str, value: Any, typ: type) -> Any:
    """``value`` as ``typ``, or raise ValueError saying what ``name`` must be.

    Nothing is rounded or guessed: ``epochs=2.7`` is refused (``3.0`` is 3), and a boolean must be
    true or false (the strings too, in any case): ``"false"`` must never count as true.
    """
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        raise ValueError(f"{name} must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if typ is int:
        if not np.isfinite(value) or float(value) != int(value):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def make(notebook: str, profile: str = "cpu", **params: Any) -> Config:
    """Build the validated :class:`Config` of ``notebook`` for ``profile``.

    ``params`` are a notebook's parameters; ``None`` or ``""`` values fall back to the profile.
    Parameters set with ``run_all.sh --set`` (the ``BONEAGE_SET`` environment variable) apply
    after the profile and before ``params``. Unknown names raise, so that a typo in a papermill
    ``-p`` never goes unnoticed; every wrong value is listed in the one ValueError.
    """
    values: dict[str, Any] = load_profile(profile, notebook)
    values.update(env_overrides())
    for k, v in params.items():
        if v is None or (isinstance(v, str) and v == "" and k in ("data_dir", "output_dir")):
            continue
        values[k] = v
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ValueError(f"Unknown parameter(s) for {notebook}: {', '.join(unknown)}")
    values["notebook"] = notebook
    values["profile"] = profile
    env_data = os.environ.get("BONEAGE_DATA_DIR")
    data_dir = values.get("data_dir") or env_data or DEFAULT_DATA_DIR
    values["data_dir"] = _resolve(data_dir)
    out = (
        values.get("output_dir")
        or os.environ.get("BONEAGE_OUTPUT_DIR")
        or (ROOT / "runs" / profile)
    )
    values["output_dir"] = _resolve(out)
    for k in _TUPLE_FIELDS & set(values):
        v = values[k]
        values[k] = tuple(v) if isinstance(v, list | tuple) else (v,)
    problems = []
    for k, typ in _TYPED.items():
        if k in values:
            try:
                values[k] = _convert(k, values[k], typ)
            except ValueError as e:
                problems.append(str(e))
                del values[k]  # the default stands in, so every other problem is listed too
    try:
        cfg = Config(**values)
    except ValueError as e:
        if not problems:
            raise
        problems += [line[4:] for line in str(e).splitlines()[1:]]
    if problems:
        raise ValueError(
            "Invalid configuration for " + notebook + ":\n  - " + "\n  - ".join(problems)
        )
    return cfg


def _resolve(p: Any) -> Path:
    """Relative paths are taken from the project root, so notebooks never depend on the cwd."""
    p = Path(str(p)).expanduser()
    return (p if p.is_absolute() else ROOT / p).resolve()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend for repeatable runs."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import keras

        keras.utils.set_random_seed(seed)
    except ImportError:  # pragma: no cover - Keras is a hard dependency
        pass


def describe(cfg: Config) -> str:
    """A short human-readable summary for a notebook's config cell."""
    keys = (
        "profile",
        "data_dir",
        "output_dir",
        "image_size",
        "width",
        "epochs",
        "batch_size",
        "learning_rate",
        "max_samples",
        "split",
        "seed",
    )
    return json.dumps(
        {
            k: str(getattr(cfg, k)) if isinstance(getattr(cfg, k), Path) else getattr(cfg, k)
            for k in keys
        },
        indent=1,
    )
