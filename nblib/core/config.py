"""Run configuration: one frozen, validated dataclass built from a profile and a notebook's parameters.

Profiles live in ``params/<profile>.yaml``. Each file has a ``common`` section and one section per
notebook (keyed by the notebook's stem, e.g. ``03_resnet50``); the notebook section overrides
``common``, and a notebook's parameters override both, except where they are ``None``, which
means "take the profile's value". A notebook's config cell calls :func:`from_notebook`, which
gathers the names its ``parameters`` cell declares (and any papermill injected), so no notebook
lists its parameters a second time. Every name and value is checked against the fields of
:class:`Config`; a problem names where the value came from (file and section, ``--set``, the
parameters cell or papermill).
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import json
import os
import random
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from nblib.core import results, runfiles

ROOT = Path(__file__).resolve().parents[2]
PARAMS_DIR = ROOT / "params"
PROFILES = ("smoke", "cpu", "sample", "full", "paper", "paper-lite")
DEFAULT_DATA_DIR = ROOT / "data" / "synthetic"
SPLIT_PROTOCOLS = ("official", "random")
NOTEBOOK_DIR = ROOT / "notebooks"
MAX_BATCH_SIZE = 4096  # larger batches do not fit any accelerator at these image sizes
MAX_SEED = 2**32 - 1  # NumPy's and TensorFlow's seeds are unsigned 32-bit
SET_ENV = "BONEAGE_SET"  # JSON object of parameters set by ``run_all.sh --set key=value``


class ConfigError(ValueError):
    """Invalid configuration: ``problems`` lists every one, the message shows them all."""

    def __init__(self, notebook: str, problems: list[str]):
        self.problems = list(problems)
        super().__init__(f"Invalid configuration for {notebook}:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Config:
    """Everything a notebook needs to know to run; saved next to every result.

    Paths are absolute. ``data_dir`` pointing at ``DEFAULT_DATA_DIR`` means the embedded synthetic
    data set, generated on first use with ``synthetic_count`` training images. Each field's type
    is also the rule its values are checked by, wherever they come from (:func:`make`).
    """

    notebook: str
    profile: str = "cpu"
    seed: int = 42
    data_dir: Path = DEFAULT_DATA_DIR
    labels_dir: Path | None = None  # label tables to describe (01); None = the data set's own
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
    flips: str = "both"  # training flips (03, 04, 06): "both" (paper 1's), "horizontal", "none"
    average_epochs: int = 0  # the model is the mean of its last N epochs' weights; 0 = best epoch
    synthetic_count: int = 1200  # training images of the embedded synthetic data set
    ae_stages: tuple[int, ...] = (300, 200, 100, 150, 150)  # paper 2, Table 2
    baselines: tuple[str, ...] = ("xception", "vgg16", "inception_v3", "mobilenet")
    baseline_sizes: tuple[int, ...] = (256, 450)
    baseline_width: float = 1.0  # alpha for MobileNet; other backbones have no width
    baseline_epochs: int = 10
    baseline_max_samples: int = 0
    baseline_weights: str = "imagenet"  # "imagenet" | "none"
    backbone: str = "resnet18"  # 07's trunk: "resnet18" (basic blocks) | "resnet50" (paper 1's)
    rungs: tuple[
        str, ...
    ] = ()  # 07's ladder rungs to train; () = all (see nblib.experiments.beyond.LADDER)
    long_epochs: int = 0  # 07's last rung "long": the whole recipe this many epochs; 0 = none
    interval_level: float = 0.9  # 07's prediction intervals: the share of true ages they cover
    scaling_sizes: tuple[int, ...] = ()  # 07's data-scaling curve: training-set sizes; () = none

    def __post_init__(self) -> None:
        problems = [
            message.format(v=getattr(self, name))
            for name, ok, message in _RULES
            if not ok(getattr(self, name))
        ]
        if "long" in self.rungs and not self.long_epochs:
            problems.append("rungs: the long rung needs long_epochs > 0")
        if problems:  # each message starts with its field's name: make() adds where it was set
            raise ConfigError(self.notebook, problems)

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
        path = Path(path) if path else self.run_dir / runfiles.CONFIG
        results.write_json(path, self.to_dict())
        return path


# What each field must be: (field, test, message); a message starts with its field's name, so
# that make() can add where the value was set.
_RULES = (
    ("profile", lambda v: v in PROFILES, f"profile must be one of {PROFILES}, got {{v!r}}"),
    (
        "image_size",
        lambda v: 32 <= v <= 1024,
        "image_size must be between 32 and 1024 pixels, got {v}",
    ),
    ("width", lambda v: 0 < v <= 4, "width must be a multiplier in (0, 4], got {v}"),
    ("epochs", lambda v: v >= 1, "epochs must be at least 1, got {v}"),
    (
        "batch_size",
        lambda v: 1 <= v <= MAX_BATCH_SIZE,
        f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {{v}}",
    ),
    (
        "seed",
        lambda v: 0 <= v <= MAX_SEED,
        f"seed must be between 0 and 2**32-1 ({MAX_SEED}), got {{v}}",
    ),
    ("learning_rate", lambda v: 0 < v < 1, "learning_rate must be in (0, 1), got {v}"),
    ("max_samples", lambda v: v >= 0, "max_samples must be 0 (all) or positive, got {v}"),
    (
        "split",
        lambda v: v in SPLIT_PROTOCOLS,
        f"split must be one of {SPLIT_PROTOCOLS}, got {{v!r}}",
    ),
    ("patience", lambda v: v >= 0, "patience must be 0 (off) or positive, got {v}"),
    (
        "lr_schedule",
        lambda v: v in ("constant", "cosine", "plateau"),
        "lr_schedule must be constant, cosine or plateau, got {v!r}",
    ),
    (
        "mixed_precision",
        lambda v: v in _SWITCH_VALUES,
        "mixed_precision must be auto, on or off, got {v!r}",
    ),
    ("xla", lambda v: v in _SWITCH_VALUES, "xla must be auto, on or off, got {v!r}"),
    (
        "strategy",
        lambda v: v in ("auto", "default", "mirrored", "multiworker"),
        "strategy must be auto, default, mirrored or multiworker, got {v!r}",
    ),
    ("bn_momentum", lambda v: 0 <= v < 1, "bn_momentum must be in [0, 1), got {v}"),
    ("average_epochs", lambda v: v >= 0, "average_epochs must be 0 (off) or positive, got {v}"),
    (
        "flips",
        lambda v: v in ("both", "horizontal", "none"),
        "flips must be both, horizontal or none, got {v!r}",
    ),
    ("clipnorm", lambda v: v >= 0, "clipnorm must be 0 (off) or positive, got {v}"),
    (
        "deterministic",
        lambda v: isinstance(v, bool),
        "deterministic must be true or false, got {v!r}",
    ),
    ("synthetic_count", lambda v: v >= 10, "synthetic_count must be at least 10, got {v}"),
    (
        "ae_stages",
        lambda v: bool(v) and all(int(s) >= 1 for s in v),
        "ae_stages must be a non-empty list of positive epoch counts, got {v}",
    ),
    ("long_epochs", lambda v: v >= 0, "long_epochs must be 0 (no long rung) or positive, got {v}"),
    (
        "backbone",
        lambda v: v in ("resnet18", "resnet50"),
        "backbone must be resnet18 or resnet50, got {v!r}",
    ),
    (
        "baseline_weights",
        lambda v: v in ("imagenet", "none"),
        "baseline_weights must be imagenet or none, got {v!r}",
    ),
    ("interval_level", lambda v: 0 < v < 1, "interval_level must be in (0, 1), got {v}"),
    (
        "scaling_sizes",
        lambda v: all(int(n) >= 2 for n in v),
        "scaling_sizes must list training-set sizes of at least 2 images, got {v}",
    ),
)
_SWITCH_VALUES = ("auto", "on", "off")


def notebook_stems() -> list[str]:
    """The series' notebooks by stem (``03_resnet50``), read from the notebooks folder."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


# --- what each field accepts, derived from the dataclass --------------------------------------

_HINTS = typing.get_type_hints(Config)
_FIELDS = set(_HINTS)
# Set by make's own arguments, never by a profile file or --set.
_NOT_IN_PROFILES = {"notebook": "the section's name", "profile": "the file's name"}
# auto|on|off switches: YAML 1.1 (profiles, --set) reads an unquoted on/off as true/false.
_SWITCHES = ("mixed_precision", "xla")


def _is_path(name: str) -> bool:
    """Whether field ``name`` holds a path (``""`` then means "not set", as ``None`` does)."""
    hint = _HINTS.get(name)
    return hint is Path or Path in typing.get_args(hint)


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
    if typ is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool) and name in _SWITCHES:
            return "on" if value else "off"
        raise ValueError(f"{name} must be text, got {value!r}")
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


def _check(name: str, value: Any) -> Any:
    """``value`` converted to the type of field ``name``; ValueError saying what is expected.

    A list field also takes one value (``baseline_sizes: 80``) or a YAML list written as text
    (papermill's ``-p ae_stages "[1, 1]"``). An optional path takes ``None``.
    """
    if name not in _FIELDS:
        close = difflib.get_close_matches(name, sorted(_FIELDS), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise ValueError(f"{name} is not a parameter{hint}")
    hint = _HINTS[name]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is tuple:
        items = value
        if isinstance(value, str):
            try:
                items = yaml.safe_load(value)
            except yaml.YAMLError:
                pass
        items = items if isinstance(items, list | tuple) else [items]
        try:
            return tuple(_convert(name, v, args[0]) for v in items)
        except ValueError:
            what = {int: "whole numbers", float: "numbers", str: "names"}[args[0]]
            raise ValueError(f"{name} must be a list of {what}, got {value!r}") from None
    if _is_path(name):
        if value is None and type(None) in args:
            return None
        if not isinstance(value, str | os.PathLike):
            raise ValueError(f"{name} must be a folder path, got {value!r}")
        return value
    return _convert(name, value, hint)


# --- profiles --------------------------------------------------------------------------------


def _read_profile(profile: str) -> tuple[Path, dict[str, dict[str, Any]]]:
    """``params/<profile>.yaml`` as {section: {name: checked value}}, every section checked.

    Refused, each with the file, the section, the name and what is expected: a section that names
    no notebook (a typo such as ``03_resnet-50``), a name that is no parameter, a value of the
    wrong type, and YAML that does not parse.
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
    problems, sections = [], {}
    for name, section in doc.items():
        if str(name) not in valid:
            close = difflib.get_close_matches(str(name), valid, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown section {name!r}{hint}")
            continue
        if section is not None and not isinstance(section, dict):
            problems.append(f"section {name!r} must hold name: value lines, got {section!r}")
            continue
        sections[str(name)] = {}
        for key, value in (section or {}).items():
            key = str(key)
            if key in _NOT_IN_PROFILES:
                problems.append(
                    f"section {name!r}: {key} cannot be set here (it is {_NOT_IN_PROFILES[key]})"
                )
                continue
            try:
                sections[str(name)][key] = _check(key, value)
            except ValueError as e:
                problems.append(f"section {name!r}: {e}")
    if problems:
        raise ValueError(
            f"Profile file {path}:\n  - "
            + "\n  - ".join(problems)
            + f"\nSections are 'common' and the notebooks: {', '.join(valid[1:])}; "
            "names are the fields of nblib.core.config.Config."
        )
    return path, sections


def load_profile(profile: str, notebook: str | None = None) -> dict[str, Any]:
    """Return the merged ``common`` + notebook section of ``params/<profile>.yaml``, checked.

    The whole file is checked, not only the sections asked for (see :func:`_read_profile`), so a
    mistake in any section stops a series before its first notebook runs.
    """
    _, sections = _read_profile(profile)
    merged = dict(sections.get("common", {}))
    if notebook:
        merged.update(sections.get(notebook, {}))
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


# --- building a Config -----------------------------------------------------------------------


def make(notebook: str, profile: str = "cpu", **params: Any) -> Config:
    """Build the validated :class:`Config` of ``notebook`` for ``profile``.

    ``params`` are a notebook's parameters; ``None`` values, and ``""`` for a path, fall back to
    the profile. Parameters set with ``run_all.sh --set`` (the ``BONEAGE_SET`` environment
    variable) apply after the profile and before ``params``. Unknown names raise, so that a typo
    never goes unnoticed; every wrong value is listed in the one ValueError, each with where it
    was set.
    """
    return _build(notebook, profile, params, {})


def _build(
    notebook: str, profile: str, params: Mapping[str, Any], sources: Mapping[str, str]
) -> Config:
    """:func:`make`, with ``sources`` naming where each of ``params`` was set (for messages)."""
    path, sections = _read_profile(profile)
    values: dict[str, Any] = {}
    origin: dict[str, str] = {}  # where each value was set, for the messages
    for section in ("common", notebook):
        for k, v in sections.get(section, {}).items():
            values[k], origin[k] = v, f"{path}, section {section!r}"
    layers = [(k, v, f"--set ({SET_ENV})") for k, v in env_overrides().items()]
    layers += [(k, v, sources.get(k, "parameters")) for k, v in params.items()]
    problems = []
    for k, v, source in layers:
        if v is None or (isinstance(v, str) and v == "" and _is_path(k)):
            continue
        if k in _NOT_IN_PROFILES:
            problems.append(f"{source}: {k} cannot be set here")
            continue
        try:
            values[k], origin[k] = _check(k, v), source
        except ValueError as e:
            problems.append(f"{source}: {e}")  # the default stands in, so all are listed
    values["notebook"] = notebook
    values["profile"] = profile
    env_data = os.environ.get("BONEAGE_DATA_DIR")
    values["data_dir"] = _resolve(values.get("data_dir") or env_data or DEFAULT_DATA_DIR)
    out = (
        values.get("output_dir")
        or os.environ.get("BONEAGE_OUTPUT_DIR")
        or (ROOT / "runs" / profile)
    )
    values["output_dir"] = _resolve(out)
    values["labels_dir"] = _resolve(values["labels_dir"]) if values.get("labels_dir") else None
    try:
        cfg = Config(**values)
    except ConfigError as e:
        # each of Config's messages starts with its field's name
        problems += [f"{origin.get(p.split()[0], 'default')}: {p}" for p in e.problems]
    if problems:
        raise ConfigError(notebook, problems)
    return cfg


def parameter_names(nb: Path | str) -> set[str]:
    """The names assigned in the cell tagged ``parameters`` of notebook file ``nb`` (none: empty)."""
    doc = json.loads(Path(nb).read_text(encoding="utf-8"))
    for cell in doc.get("cells", []):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = cell["source"]
            return _assigned_names("".join(source) if isinstance(source, list) else source)
    return set()


def _assigned_names(source: str) -> set[str]:
    """The top-level names a cell of Python assigns (``a = 1``, ``a: int = 1``, ``a, b = 1, 2``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    targets = []
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets += node.targets
        elif isinstance(node, ast.AnnAssign):
            targets.append(node.target)
    names = set()
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.add(n.id)
    return names


def _injected_names(namespace: Mapping[str, Any]) -> set[str]:
    """The names papermill's injected-parameters cell assigned, when this kernel ran one.

    IPython keeps the source of every executed cell in ``In``; papermill's cell starts with its
    ``# Parameters`` comment. Outside IPython (no ``In``) nothing was injected.
    """
    for source in reversed(list(namespace.get("In") or [])):
        if isinstance(source, str) and source.lstrip().startswith("# Parameters\n"):
            return _assigned_names(source)
    return set()


def from_notebook(notebook: str, namespace: Mapping[str, Any]) -> Config:
    """The :class:`Config` of ``notebook`` from the parameters its kernel holds: the config cell's
    ``cfg = config.from_notebook("03_resnet50", globals())``.

    Gathers exactly the names the notebook's ``parameters`` cell declares (read from
    ``notebooks/<notebook>.ipynb``), with the values they hold now, so papermill's
    injected-parameters cell, which runs after it, overrides them. A name papermill injected that
    the cell does not declare counts too if it is a :class:`Config` field (papermill only warns
    about it), and is refused otherwise. Types are checked against the fields; a problem names
    the cell or papermill as its source.
    """
    path = NOTEBOOK_DIR / f"{notebook}.ipynb"
    if not path.is_file():
        raise FileNotFoundError(f"Notebook {path} is missing: {notebook!r} names no notebook")
    declared = parameter_names(path)
    if not declared:
        raise ValueError(f"Notebook {path} has no cell tagged 'parameters'")
    injected = _injected_names(namespace)
    cell = f"the parameters cell of {notebook}"
    problems = [
        f"{cell}: {name} is not a parameter; the names are the fields of nblib.core.config.Config"
        for name in sorted(declared - _FIELDS)
    ]
    for name in sorted(injected - declared - _FIELDS):
        close = difflib.get_close_matches(name, sorted(declared), n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"papermill parameter {name!r} is not a parameter of {notebook}{hint}")
    problems += [
        f"{cell}: {name} is not defined; run that cell first"
        for name in sorted(declared - set(namespace))
    ]
    if problems:
        raise ConfigError(notebook, problems)
    names = (declared | injected) & _FIELDS
    params = {name: namespace[name] for name in names}
    sources = {
        name: "papermill parameters (injected-parameters cell)" if name in injected else cell
        for name in names
    }
    profile = params.pop("profile", None) or "cpu"
    return _build(notebook, profile, params, sources)


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


def shown(path: str | Path, run: Path | None = None) -> str:
    """A path as a page shows it, without the machine's folders: relative to the run folder
    ``run`` when inside it ("03_resnet50/curves.png"), else relative to the repository when
    inside the folder that holds it ("data/synthetic", "runs/cpu", "../shared/data/rsna-full"),
    else as given (a folder the user chose elsewhere)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    for base, rel in ((run, False), (ROOT, True)):
        if base is None:
            continue
        base = Path(base).resolve()
        inside = base.parent if rel else base
        if p.resolve().is_relative_to(inside):
            return os.path.relpath(p.resolve(), base)
    return str(p)


def describe(cfg: Config) -> str:
    """A short human-readable summary for a notebook's config cell; the folders as
    :func:`shown` gives them (relative to the repository)."""
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
            k: shown(getattr(cfg, k)) if isinstance(getattr(cfg, k), Path) else getattr(cfg, k)
            for k in keys
        },
        indent=1,
    )
