"""Bone age of a patient's radiograph from trained models: ``python -m nblib.predict``.

``boneage-predict hand.png --model runs/sample/03_resnet50/model.keras --sex F --age 130``

Inputs: PNG (8 or 16 bits; 16-bit files are scaled by their real bit depth, as the series does),
JPEG, DICOM (modality LUT or rescale, then VOI LUT or window, then MONOCHROME1 inverted), a folder
of such images, or a CSV with a ``path`` column and optional ``sex`` and ``age`` (months) columns.
Models: one or more ``.keras`` files the series saved, or run folders holding ``model.keras``
files; several models form an ensemble. Each model's input is made as it was in training: its
``<stem>.preprocess.json`` sidecar when it has one (``nblib.preprocess``), else the series'
pipeline (the whole image resized to the model's size).

Per image: the bone age in months and years; its uncertainty, the standard deviation of the
predictions over the test-time flips (the faithful models train with flips) and the ensemble's
members; with the chronological age, bone age minus age and a standard deviation score against
the Greulich & Pyle (Brush Foundation) table, flagged outside +-2 SD; a Grad-CAM overlay. Images
that cannot be analysed (unreadable, blank, far too small, inverted beyond correction, no hand
found) get a reason instead of a number. Results: ``predictions.json``, ``predictions.csv`` and
``gradcam/*.png`` in ``--out``, written atomically, and one line per image on the console.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from nblib import pipeline, preprocess, results

MIN_SIDE = 64  # px: a smaller picture of a hand shows no bones worth measuring
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
DICOM_SUFFIXES = (".dcm", ".dicom")
OVERLAY_SIDE = 768  # longest side of the Grad-CAM overlay PNG

# Standard deviations of skeletal age (months) by chronological age (months) for boys and girls,
# from the Brush Foundation study, as tabulated in Greulich WW, Pyle SI. Radiographic Atlas of
# Skeletal Development of the Hand and Wrist, 2nd ed. Stanford University Press, 1959. The values
# are transcribed from public code that carries the table: github.com/dfnr2/bone-age-app,
# src/data/BrushFoundationData.js, and an independent transcription in a DICOM bone-age
# predictor's growth-chart module; the two agree value for value.
SD_TABLE_SOURCE = (
    "Greulich & Pyle (1959), Radiographic Atlas of Skeletal Development of the Hand and Wrist, "
    "2nd ed.: standard deviations of skeletal age, Brush Foundation study"
)
SD_TABLE = {
    "M": (
        (3, 0.69), (6, 1.13), (9, 1.43), (12, 1.97), (18, 3.52), (24, 3.92), (30, 4.52),
        (36, 5.08), (42, 5.40), (48, 6.66), (54, 8.36), (60, 8.79), (72, 9.17), (84, 8.91),
        (96, 9.10), (108, 9.00), (120, 9.79), (132, 10.09), (144, 10.38), (156, 10.44),
        (168, 10.72), (180, 11.32), (192, 12.86), (204, 13.05),
    ),
    "F": (
        (3, 0.72), (6, 1.16), (9, 1.36), (12, 1.77), (18, 3.49), (24, 4.64), (30, 5.37),
        (36, 5.97), (42, 7.48), (48, 8.98), (54, 10.73), (60, 11.65), (72, 10.23), (84, 9.64),
        (96, 10.23), (108, 10.74), (120, 11.73), (132, 11.94), (144, 10.24), (156, 10.67),
        (168, 11.30), (180, 9.23), (192, 7.31),
    ),
}  # fmt: skip

COLUMNS = [
    "path",
    "status",
    "reason",
    "bone_age_months",
    "bone_age_years",
    "uncertainty_months",
    "n_predictions",
    "sex",
    "age_months",
    "difference_months",
    "sd_reference_months",
    "sds",
    "outside_2sd",
    "gradcam",
    "notes",
]


class UsageError(ValueError):
    """The command cannot run as asked (no model, a missing sex, a bad CSV): nothing predicted."""


class Rejected(Exception):
    """An image that cannot be analysed; the message is the reason shown instead of a number."""


# ---------------------------------------------------------------------------------------------
# The Greulich & Pyle standard deviations


def reference_sd(age_months: float, sex: str) -> float | None:
    """SD of skeletal age (months) at ``age_months`` for ``sex`` (``M``/``F``), linearly
    interpolated in :data:`SD_TABLE`; None outside the table's ages (3 months to 17 years for
    boys, 16 years for girls)."""
    ages, sds = zip(*SD_TABLE[sex], strict=True)
    if not ages[0] <= age_months <= ages[-1]:
        return None
    return float(np.interp(age_months, ages, sds))


def compare_to_age(bone_age: float, age: float, sex: str | None) -> dict[str, Any]:
    """Bone age minus chronological age, and its SDS against the G&P table when sex is known."""
    out: dict[str, Any] = {"difference_months": bone_age - age}
    sd = reference_sd(age, sex) if sex else None
    out["sd_reference_months"] = sd
    out["sds"] = (bone_age - age) / sd if sd else None
    out["outside_2sd"] = bool(abs(out["sds"]) > 2) if sd else None
    return out


# ---------------------------------------------------------------------------------------------
# Reading images


def is_dicom(path: Path) -> bool:
    """A ``.dcm``/``.dicom`` file, or any file with the DICOM preamble's ``DICM`` marker."""
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def read_dicom(path: Path | str) -> np.ndarray:
    """A DICOM radiograph -> uint8 gray, displayed as its header asks.

    The modality LUT (or RescaleSlope/Intercept) first, then the VOI LUT or the window
    (WindowCenter/Width, with its VOI LUT function), each mapped from its output range onto
    0-255; without either, the values' own range is. MONOCHROME1 (white = low values) is then
    inverted, so bone is bright as in every other input. Raises ValueError naming the file.
    """
    try:
        import pydicom
    except ImportError:
        raise ValueError(
            f"{path} is DICOM, which needs pydicom: pip install 'boneage-repro[dicom]'"
        ) from None
    try:
        from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing
    except ImportError:  # pydicom 2.x
        from pydicom.pixel_data_handlers.util import (
            apply_modality_lut,
            apply_voi,
            apply_windowing,
        )
    try:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
        raise ValueError(f"cannot read DICOM {path}: {str(e).strip()[:200]}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"{path} holds {frames} frames; export the one radiograph on its own")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if pixels.ndim == 3:  # colour (pydicom gives RGB): gray, by its own range
        pixels = cv2.cvtColor(pixels.astype(np.float32), cv2.COLOR_RGB2GRAY)
        return _to_uint8(pixels, float(pixels.min()), float(pixels.max()))
    values = apply_modality_lut(pixels, ds)
    if ds.get("VOILUTSequence"):
        values = apply_voi(np.round(values).astype(np.int64), ds)
        lo, hi = 0.0, float(2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1)
    elif ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        values = apply_windowing(values.astype(np.float64), ds)
        with np.errstate(over="ignore"):  # the ends of the window's output range, whatever its kind
            lo, hi = (float(v) for v in apply_windowing(np.array([-1e30, 1e30]), ds))
    else:
        lo, hi = float(values.min()), float(values.max())
    gray = _to_uint8(values, lo, hi)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _to_uint8(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(values.shape, np.uint8)  # flat: the checks call it blank
    scaled = (np.asarray(values, np.float64) - lo) * (255.0 / (hi - lo))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def read_image(path: Path | str) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted file -> (uint8 gray at full size, alpha or None); ValueError if unreadable.

    PNG and JPEG go through :func:`nblib.pipeline.read_gray` (16-bit scaled by the real bit
    depth), DICOM through :func:`read_dicom`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if is_dicom(path):
        return read_dicom(path), None
    try:
        return pipeline.read_gray(path)
    except cv2.error as e:  # a damaged body can fail inside OpenCV's decoder
        raise ValueError(f"cannot decode {path}: {str(e).strip()[:120]}") from None


def examine(gray: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, preprocess.Box, list]:
    """Judge a decoded image: ``(image to use, hand box, notes)``, or raise :class:`Rejected`.

    The series' data checks (:func:`nblib.pipeline.judge`) reject blank pictures; an image that
    looks inverted (white background) is inverted back and noted, and rejected if no hand stands
    out even then; any image with no plausible hand (:func:`nblib.preprocess.hand_box`) is
    rejected, as is one smaller than 64 px a side.
    """
    h, w = gray.shape
    if min(h, w) < MIN_SIDE:
        raise Rejected(f"far too small: {w}x{h} px; at least {MIN_SIDE} px a side is needed")
    problem, warning = pipeline.judge(gray, alpha)
    if problem:
        raise Rejected(problem)
    notes = []
    inverted = warning == pipeline.INVERTED
    if inverted:
        gray = 255 - gray
        notes.append("looked inverted (white background, dark bones): inverted back")
    box = preprocess.hand_box(gray)
    if not box.found:
        if inverted:
            raise Rejected(f"inverted beyond correction: even inverted back, {box.note}")
        raise Rejected(f"not a hand radiograph: {box.note}")
    return gray, box, notes


# ---------------------------------------------------------------------------------------------
# What to predict


@dataclass
class Item:
    """One image to predict, with what is known of the patient."""

    path: Path
    sex: str | None = None  # "M" or "F"
    age: float | None = None  # chronological age, months


def parse_sex(value: Any, where: str) -> str | None:
    """``M``/``F`` from M, F, male, female, 1, 0, true, false (any case); None if empty."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    if text == "":
        return None
    if text in ("m", "male", "1", "true"):
        return "M"
    if text in ("f", "female", "0", "false"):
        return "F"
    raise UsageError(f"{where}: sex must be M or F (or male/female, 1/0), got {value!r}")


def parse_age(value: Any, where: str) -> float | None:
    """Chronological age in months (0-300), or None if empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{where}: age must be a number of months, got {value!r}") from None
    if math.isnan(age):
        return None
    if not 0 <= age <= 300:
        raise UsageError(f"{where}: age must be 0-300 months (a child's age), got {value!r}")
    return age


def read_list(csv_path: Path) -> list[Item]:
    """Items from a CSV with a ``path`` column (relative to the CSV's folder) and optional
    ``sex`` and ``age`` (months) columns; a bad row raises UsageError naming file and line."""
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise UsageError(f"{csv_path} is not a readable CSV: {str(e).strip()[:200]}") from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "path" not in df.columns:
        raise UsageError(
            f"{csv_path} needs a 'path' column (and optionally 'sex', 'age'); it has "
            f"{', '.join(df.columns) or 'none'}"
        )
    items = []
    for i, row in enumerate(df.to_dict("records")):
        where = f"{csv_path}, line {i + 2}"
        p = row["path"].strip()
        if not p:
            raise UsageError(f"{where}: the path is empty")
        path = Path(p) if Path(p).is_absolute() else csv_path.parent / p
        items.append(Item(path, parse_sex(row.get("sex"), where), parse_age(row.get("age"), where)))
    if not items:
        raise UsageError(f"{csv_path} lists no images")
    return items


def collect(inputs: list[str], sex: str | None = None, age: float | None = None) -> list[Item]:
    """Items from files, folders (every image in them, sorted) and CSV lists.

    ``sex`` and ``age`` (the command line's) apply where a CSV row gives none. A folder with no
    image is an error; a named file that is missing or unreadable is predicted as rejected.
    """
    items: list[Item] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith(".")
            )
            if not found:
                raise UsageError(f"folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})")
            items += [Item(f) for f in found]
        elif p.suffix.lower() == ".csv":
            if not p.is_file():
                raise UsageError(f"no such CSV file: {p}")
            items += read_list(p)
        else:
            items.append(Item(p))
    for it in items:
        it.sex = it.sex or sex
        it.age = it.age if it.age is not None else age
    return items


# ---------------------------------------------------------------------------------------------
# Models


ENSEMBLE_FILE = "ensemble.json"  # a folder's weighted ensemble (notebook 08 writes one)


def read_ensemble(path: Path) -> list[tuple[Path, float]]:
    """``(model path, weight)`` of each member of an ``ensemble.json``; paths relative to its folder."""
    doc = results.read_json(path)
    members = doc.get("members") if isinstance(doc, dict) else None
    if not isinstance(members, list) or not members:
        raise UsageError(f"{path}: expected a non-empty 'members' list")
    out = []
    for i, m in enumerate(members):
        if (
            not isinstance(m, dict)
            or "model" not in m
            or not isinstance(m.get("weight"), int | float)
        ):
            raise UsageError(f"{path}: member {i} needs 'model' (a path) and 'weight' (a number)")
        model = (path.parent / m["model"]).resolve()
        if not model.is_file():
            raise UsageError(f"{path}: member {i}'s model {model} is missing")
        if m["weight"] > 0:
            out.append((model, float(m["weight"])))
    return out


def find_models(specs: list[str]) -> list[Path]:
    """``.keras`` files from files and folders (every ``model.keras`` below a folder; a folder
    with an ``ensemble.json`` gives that ensemble's members, see :func:`weighted_models`)."""
    return [p for p, _ in weighted_models(specs)]


def weighted_models(specs: list[str]) -> list[tuple[Path, float]]:
    """``(.keras file, weight)`` pairs: a folder holding ``ensemble.json`` gives its members and
    their validation-chosen weights; any other model counts with weight 1."""
    paths: list[tuple[Path, float]] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir() and (p / ENSEMBLE_FILE).is_file():
            paths += read_ensemble(p / ENSEMBLE_FILE)
        elif p.is_dir():
            found = sorted(p.rglob("model.keras"))
            if not found:
                raise UsageError(f"no model.keras file under {p}")
            paths += [(f, 1.0) for f in found]
        elif p.is_file():
            if p.suffix != ".keras":
                raise UsageError(f"{p} is not a .keras model file")
            paths.append((p, 1.0))
        else:
            raise UsageError(f"no such model file or folder: {p}")
    return paths


@dataclass
class Member:
    """One loaded model of the ensemble: how its input is made, and its compiled prediction.

    :meth:`predict` makes one call per image for all test-time variants, through a model that
    also returns the Grad-CAM feature map (:class:`GradCam`), so that the heat map costs only
    the gradient through the model's small head. :meth:`warm_up` traces that call once at
    loading, so that every image then costs the same.
    """

    path: Path
    model: Any
    size: int
    inputs: tuple[str, ...]  # "image", and "sex" when the model takes it
    prep: preprocess.Preprocessing
    tta: tuple[str, ...]
    from_sidecar: bool
    cam: GradCam | None = None
    cam_problem: str | None = None  # why there is no Grad-CAM
    weight: float = 1.0  # its share of the ensemble's average
    _runner: Any = field(default=None, repr=False)

    @property
    def needs_sex(self) -> bool:
        return "sex" in self.inputs

    def feed(self, images: np.ndarray, sex: str | None) -> Any:
        """The model's input for uint8 ``[N, S, S, 1]`` images (and the patient's sex)."""
        if not self.needs_sex:
            return images
        male = np.full((len(images), 1), 1.0 if sex == "M" else 0.0, np.float32)
        return {"image": images, "sex": male}

    def predict(self, images: np.ndarray, sex: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Months for each of ``images`` (uint8 ``[N, S, S, 1]``), and their Grad-CAM feature
        maps (None without Grad-CAM)."""
        import keras

        if self._runner is None:
            inputs = self.model.inputs if self.needs_sex else self.model.inputs[0]
            outputs = [self.cam.layer.output, self.model.output] if self.cam else self.model.output
            self._runner = keras.Model(inputs, outputs)
        out = self._runner.predict_on_batch(self.feed(images, sex))
        fmap, y = (out[0], out[1]) if self.cam else (None, out)
        return np.asarray(y, np.float64).reshape(len(images)), fmap

    def warm_up(self) -> None:
        """Trace the compiled prediction once (seconds for a large model)."""
        self.predict(np.zeros((len(self.tta), self.size, self.size, 1), np.uint8), "F")

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "weight": self.weight,
            "image_size": self.size,
            "inputs": list(self.inputs),
            "preprocessing": self.prep.to_dict(),
            "preprocessing_from": "sidecar" if self.from_sidecar else "the series' pipeline",
            "tta": list(self.tta),
            "gradcam_layer": self.cam.layer.name if self.cam else None,
            "gradcam_problem": self.cam_problem,
        }


def load_member(path: Path) -> Member:
    """Load a saved model (safe mode, no compile) and check what it takes and gives."""
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise UsageError(f"cannot load model {path}: {str(e).strip()[:300]}") from None
    names = tuple(t.name for t in model.inputs)
    if len(names) == 1:
        names = ("image",)
    unknown = [n for n in names if n not in preprocess.INPUTS]
    if unknown or "image" not in names:
        raise UsageError(
            f"model {path} takes inputs {list(names)}; a bone-age model takes 'image' "
            "(uint8 [N, S, S, 1]) and optionally 'sex' (1 = male, 0 = female, shape [N, 1])"
        )
    shape = tuple(model.inputs[names.index("image")].shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1 or not shape[1]:
        raise UsageError(f"model {path}: its image input is {shape}, not [N, S, S, 1]")
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape)[1:] not in ((1,), ()):
        raise UsageError(f"model {path} must give one number (months) per image")
    size = int(shape[1])
    try:
        sidecar = preprocess.load_sidecar(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    prep, extra = sidecar if sidecar else (preprocess.Preprocessing(size), {})
    if prep.size != size:
        raise UsageError(
            f"{preprocess.sidecar_path(path)} says size {prep.size}, but the model takes {size} px"
        )
    if "inputs" in extra and set(extra["inputs"]) != set(names):
        raise UsageError(
            f"{preprocess.sidecar_path(path)} lists inputs {extra['inputs']}, but the model "
            f"takes {list(names)}"
        )
    tta = tuple(extra.get("tta", preprocess.TTA))
    member = Member(path, model, size, names, prep, tta, sidecar is not None)
    try:
        member.cam = GradCam(model, names)
    except (ValueError, NotImplementedError) as e:
        member.cam_problem = str(e).strip()[:200]
    member.warm_up()
    return member


# ---------------------------------------------------------------------------------------------
# Grad-CAM


class GradCam:
    """Grad-CAM (Selvaraju et al. 2017) on a model's last 4-D convolutional feature map.

    The feature map comes with the prediction (:meth:`Member.predict`); the model's head, from
    that map (and the sex input if the head uses it) to the months, is a model of its own here.
    The map's channels are weighted by the mean gradient of the predicted age and summed. For a
    classifier Grad-CAM keeps the positive part, the evidence for the class; the age is a
    regression, and on real radiographs the sum is mostly negative for a young predicted age
    (the features pull the estimate down), so the magnitude is shown: where the image moves the
    estimate most, up or down. Gradients come from the backend: TensorFlow through
    ``nblib.tfbackend``, JAX through ``jax.grad``.
    """

    SKIP = ("InputLayer", "Rescaling", "RandomFlip", "ZeroPadding2D", "Concatenate")

    def __init__(self, model, inputs: tuple[str, ...]):
        import keras

        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            raise NotImplementedError(
                f"Grad-CAM needs the TensorFlow or JAX backend, not {backend}"
            )
        self.layer = self.feature_layer(model)
        if self.layer is None:
            raise ValueError("the model has no 4-D feature map larger than 1x1")
        sex = [t for t, n in zip(model.inputs, inputs, strict=True) if n == "sex"]
        self.head = None
        for extra in ([], sex) if sex else ([],):
            try:
                self.head = keras.Model([self.layer.output, *extra], model.output)
                self.head_takes_sex = bool(extra)
                break
            except ValueError:
                continue
        if self.head is None:
            raise ValueError(f"the model's output does not flow through {self.layer.name} alone")

    @classmethod
    def feature_layer(cls, model):
        """The last layer whose output is a 4-D map larger than 1x1 (not pooling or the front)."""
        best = None
        for layer in model.layers:
            kind = type(layer).__name__
            if kind in cls.SKIP or "Pooling" in kind:
                continue
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):  # a layer used at several places
                continue
            if len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
                best = layer
        return best

    def heat(self, fmap: np.ndarray, sex: str | None, size: int) -> np.ndarray:
        """Heat map in [0, 1] over the ``size x size`` input, from one image's feature map."""
        import keras

        fmap = np.asarray(fmap, np.float32)[None]
        if self.head_takes_sex:
            male = keras.ops.convert_to_tensor([[1.0 if sex == "M" else 0.0]])

            def head(f):
                return self.head([f, male], training=False)
        else:

            def head(f):
                return self.head(f, training=False)

        grads = _gradient(head, fmap)
        weights = grads.mean(axis=(1, 2), keepdims=True)
        cam = np.abs((fmap * weights).sum(axis=-1)[0])
        cam = cam / cam.max() if cam.max() > 0 else cam
        return cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR)


def _gradient(fn, x: np.ndarray) -> np.ndarray:
    """``d sum(fn(x)) / dx`` on the Keras backend in use (TensorFlow or JAX, see GradCam)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from nblib import tfbackend

        return tfbackend.gradient(fn, x)
    import jax
    import jax.numpy as jnp

    return np.asarray(jax.grad(lambda v: jnp.sum(fn(v)))(jnp.asarray(x)))


def overlay(gray: np.ndarray, cams: list[tuple[np.ndarray, preprocess.Box]]) -> np.ndarray:
    """The radiograph in colour with the mean heat map of ``cams`` (each over its box) on top."""
    heat = np.zeros(gray.shape, np.float32)
    for cam, (x0, y0, x1, y1) in cams:
        heat[y0:y1, x0:x1] += cv2.resize(cam, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    heat /= max(1, len(cams))
    scale = min(1.0, OVERLAY_SIDE / max(gray.shape))
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    base = cv2.cvtColor(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    alpha = (0.5 * np.clip(heat, 0, 1))[..., None]  # no heat: the plain radiograph
    return np.uint8(np.round(base * (1 - alpha) + colour * alpha))


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an image as PNG, atomically."""
    with results.atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write {path}")
    return path


# ---------------------------------------------------------------------------------------------
# Prediction


def predict_item(
    item: Item, members: list[Member], tta: bool = True, gradcam: bool = True
) -> dict[str, Any]:
    """Predict one image with every member: a result row (see :data:`COLUMNS`), plus
    ``members`` (each model's predictions) and ``cams`` (for :func:`overlay`)."""
    rec: dict[str, Any] = {c: None for c in COLUMNS}
    rec.update(path=str(item.path), sex=item.sex, age_months=item.age, notes=[], members=[])
    try:
        try:
            gray, alpha = read_image(item.path)
        except ValueError as e:
            raise Rejected(f"cannot be read: {e}") from None
        gray, box, rec["notes"] = examine(gray, alpha)
    except Rejected as e:
        rec.update(status="rejected", reason=str(e))
        return rec
    rec["gray"], rec["cams"], preds, weights = gray, [], [], []
    for m in members:
        image, used = m.prep.apply(gray, box)
        variants = m.tta if tta else ("identity",)
        p, fmaps = m.predict(preprocess.tta_batch(image, variants), item.sex)
        preds += list(p)
        weights += [m.weight / len(p)] * len(p)
        rec["members"].append(
            {
                "model": str(m.path),
                "months": float(p.mean()),
                "weight": m.weight,
                "tta": dict(zip(variants, p, strict=True)),
            }
        )
        if gradcam and fmaps is not None:  # on the first variant, flipped back (flips undo)
            heat = m.cam.heat(fmaps[0], item.sex, m.size)[..., None]
            rec["cams"].append((preprocess.tta_batch(heat, variants[:1])[0, ..., 0], used))
        elif gradcam and f"no Grad-CAM for {m.path.name}" not in " ".join(rec["notes"]):
            rec["notes"].append(f"no Grad-CAM for {m.path.name}: {m.cam_problem}")
    w = np.asarray(weights) / np.sum(weights)
    months = float(w @ np.asarray(preds))  # each member's mean over its variants, weighted
    spread = float(np.sqrt(w @ (np.asarray(preds) - months) ** 2))
    rec.update(
        status="ok",
        bone_age_months=months,
        bone_age_years=months / 12,
        uncertainty_months=spread if len(preds) > 1 else None,
        n_predictions=len(preds),
    )
    if item.age is not None:
        rec.update(compare_to_age(months, item.age, item.sex))
        if item.sex is None:
            rec["notes"].append("no SDS: the G&P table needs the sex (--sex)")
        elif rec["sds"] is None:
            last = SD_TABLE[item.sex][-1][0]
            rec["notes"].append(f"no SDS: the G&P table covers ages 3-{last} months")
    return rec


def line(rec: dict[str, Any]) -> str:
    """One readable console line for a result row."""
    name = Path(rec["path"]).name
    if rec["status"] != "ok":
        return f"{name}: not analysed: {rec['reason']}"
    text = f"{name}: bone age {rec['bone_age_months']:.1f} months ({rec['bone_age_years']:.1f} y)"
    if rec["uncertainty_months"] is not None:
        text += f" +- {rec['uncertainty_months']:.1f} (SD of {rec['n_predictions']})"
    if rec["age_months"] is not None:
        text += f"; age {rec['age_months']:.1f}: {rec['difference_months']:+.1f} months"
        if rec["sds"] is not None:
            text += f", SDS {rec['sds']:+.2f}"
            text += " (outside +-2 SD)" if rec["outside_2sd"] else ""
    return text


def run(
    inputs: list[str],
    models: list[str | Path | Member],
    out_dir: Path | str,
    sex: str | None = None,
    age: float | None = None,
    tta: bool = True,
    gradcam: bool = True,
    echo=print,
) -> list[dict[str, Any]]:
    """Predict every image of ``inputs`` with the ensemble of ``models`` (paths as for
    :func:`find_models`, or members already loaded); write the results.

    Writes ``predictions.json`` (the rows, each model's predictions, the models and their
    preprocessing, the SD table's source, provenance), ``predictions.csv`` (the rows) and
    ``gradcam/<image stem>.png`` into ``out_dir``. Returns the rows. Raises :class:`UsageError`
    before predicting anything when the models cannot be used as asked (e.g. a model takes the
    sex and an image has none).
    """
    out_dir = Path(out_dir)
    items = collect(inputs, sex, age)
    members = [m for m in models if isinstance(m, Member)]
    paths = [str(m) for m in models if not isinstance(m, Member)]
    for p, w in weighted_models(paths):
        members.append(load_member(p))
        members[-1].weight = w
    if not members:
        raise UsageError("no model given")
    needing = [m.path for m in members if m.needs_sex]
    missing = [str(it.path) for it in items if it.sex is None]
    if needing and missing:
        raise UsageError(
            f"model {needing[0]} takes the patient's sex (input 'sex'): give --sex M or F, or a "
            f"'sex' column in the CSV; missing for {', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )
    rows, names = [], set()
    for item in items:
        rec = predict_item(item, members, tta, gradcam)
        cams, gray = rec.pop("cams", None), rec.pop("gray", None)
        if cams:
            stem = _unique(item.path.stem, names)
            rec["gradcam"] = str(
                write_png(out_dir / "gradcam" / f"{stem}.png", overlay(gray, cams))
            )
        echo(line(rec))
        rows.append(rec)
    table = pd.DataFrame([{c: _csv_value(r[c]) for c in COLUMNS} for r in rows], columns=COLUMNS)
    results.write_csv(out_dir / "predictions.csv", table)
    results.write_json(
        out_dir / "predictions.json",
        {
            "models": [m.describe() for m in members],
            "tta": tta,
            "sd_table": SD_TABLE_SOURCE,
            "predictions": rows,
            "provenance": results.provenance(),
        },
    )
    return rows


def _unique(stem: str, taken: set[str]) -> str:
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}-{k}", k + 1
    taken.add(name)
    return name


def _csv_value(v: Any) -> Any:
    if isinstance(v, list):
        return "; ".join(v)
    return round(v, 3) if isinstance(v, float) else v


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ap = argparse.ArgumentParser(
        prog="boneage-predict",
        description="Bone age of hand radiographs from the series' trained models, with its "
        "uncertainty, the SDS against Greulich & Pyle (with --age) and a Grad-CAM overlay.",
    )
    ap.add_argument("inputs", nargs="+", help="images (PNG, JPEG, DICOM), folders, or CSV lists")
    ap.add_argument(
        "--model",
        nargs="+",
        required=True,
        help=".keras files or run folders (every model.keras below); several = an ensemble",
    )
    ap.add_argument("--sex", help="M or F (needed by models that take the sex, and for the SDS)")
    ap.add_argument("--age", help="chronological age in months: adds bone age - age and the SDS")
    ap.add_argument("--out", default="predictions", help="output folder (default: ./predictions)")
    ap.add_argument(
        "--tta",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average over the training flips (identity, left-right, up-down, both); default on",
    )
    ap.add_argument(
        "--gradcam",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write a Grad-CAM overlay per image (default on)",
    )
    args = ap.parse_args(argv)
    try:
        run(
            args.inputs,
            args.model,
            args.out,
            parse_sex(args.sex, "--sex"),
            parse_age(args.age, "--age"),
            args.tta,
            args.gradcam,
        )
    except UsageError as e:
        print(f"boneage-predict: error: {e}", file=sys.stderr)
        return 2
    print(f"Results in {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
