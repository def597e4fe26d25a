"""Bone age of a patient's radiograph from trained models: ``python -m nblib.apps.predict``.

``boneage-predict hand.png --model runs/sample/03_resnet50/model.keras --sex F --age 130``

Inputs: PNG (8 or 16 bits; 16-bit files are scaled by their real bit depth, as the series does),
JPEG, DICOM (modality LUT or rescale, then VOI LUT or window, then MONOCHROME1 inverted; sex and
age from the header where not given), a folder of such images, or a CSV with a ``path`` column and
optional ``sex`` and ``age`` (months) columns.
Models: one or more ``.keras`` files the series saved, or run folders holding ``model.keras``
files; several models form an ensemble. Each model's input is made as it was in training: its
``<stem>.preprocess.json`` sidecar when it has one (``nblib.data.preprocess``), else the series'
pipeline (the whole image resized to the model's size).

Per image: the bone age in months and years; for an ensemble folder saved with its calibration
(notebook 07), the estimate corrected for regression to the mean and a conformal prediction
interval, both fitted on validation data; the spread of the predictions over the test-time flips
and the ensemble's members, as a diagnostic only (it does not track the error); with the
chronological age, bone age minus age and a standard deviation score against
the Greulich & Pyle (Brush Foundation) table, flagged outside +-2 SD; a Grad-CAM overlay. Images
that cannot be analysed (unreadable, blank, far too small, no hand found, a negative whose
polarity changes the answer, a DICOM header that contradicts the given sex or age) get a reason
instead of a number. Results: ``predictions.json``, ``predictions.csv`` and ``gradcam/*.png`` in
``--out``, written atomically, and one line per image on the console; the frameworks' own messages
(TensorFlow, CUDA, Keras) stay off the console unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from nblib.apps import sds, trained
from nblib.core import provenance, quiet, results
from nblib.data import dicom, pipeline, preprocess
from nblib.models import gradcam as grad_cam
from nblib.train import calibration

MIN_SIDE = 64  # px: a smaller picture of a hand shows no bones worth measuring


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")

SOURCES = ("command line", "CSV", "DICOM header", "none")  # where a row's sex and age came from
HEADER = "DICOM header"
# A given age is typed in whole months, or worked out on another day than the study's: it may be
# off by up to a month. A header more than that away from it describes another patient or a
# wrong date, and the SDS would be computed for the wrong age.
AGE_TOLERANCE_MONTHS = 1.0
# Half a year: about half the G&P SD of skeletal age at school ages (8-13 months). An image whose
# two polarities give answers further apart than this (or than the prediction's own spread) has
# an answer that depends on a guess, so it is refused.
POLARITY_TOLERANCE_MONTHS = 6.0
# Up to this many images the models are called eagerly; beyond it their prediction is traced
# once first. Tracing costs seconds a model and saves a few tenths of a second an image
# (``python -m nblib.apps.benchmark predict``; benchmarks/cpu.md).
EAGER_UP_TO = 8


COLUMNS = [
    "path",
    "status",
    "reason",
    "bone_age_months",
    "bone_age_years",
    "interval_low",
    "interval_high",
    "interval_level",
    "uncorrected_months",
    "spread_months",
    "n_predictions",
    "sex",
    "sex_source",
    "age_months",
    "age_source",
    "difference_months",
    "sd_reference_months",
    "sds",
    "outside_2sd",
    "gradcam",
    "notes",
]


class Rejected(Exception):
    """An image that cannot be analysed; the message is the reason shown instead of a number."""


def read_image(path: Path | str) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted file -> (uint8 gray at full size, alpha or None); ValueError if unreadable.

    PNG and JPEG go through :func:`nblib.data.pipeline.read_gray` (16-bit scaled by the real bit
    depth), DICOM through :func:`dicom.read_dicom`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}")
    if dicom.is_dicom(path):
        return dicom.read_dicom(path), None
    try:
        return pipeline.read_gray(path)
    except cv2.error as e:  # a damaged body can fail inside OpenCV's decoder
        raise ValueError(f"cannot decode {path}: {str(e).strip()[:120]}") from None


Reading = tuple[np.ndarray, preprocess.Box]  # an image to predict, and its hand's box


def examine(
    gray: np.ndarray, alpha: np.ndarray | None, header_polarity: bool = False
) -> tuple[list[Reading], list[str]]:
    """Judge a decoded image: ``(readings, notes)``, or raise :class:`Rejected`.

    ``readings`` holds the image as given, or, for one that looks like a negative, the image
    inverted back and then as given: :func:`predict_item` predicts both and answers only when
    they agree. The series' data checks (:func:`nblib.data.pipeline.judge`) reject blank
    pictures; their white-background rule alone fires on normal low-contrast radiographs, so an
    image counts as a negative only when its bones are dark as well (:func:`looks_negative`).
    A DICOM file's header sets its polarity (``header_polarity``): the pixels never override it.
    An image smaller than 64 px a side, or with no plausible hand
    (:func:`nblib.data.preprocess.hand_box`), is rejected.
    """
    h, w = gray.shape
    if min(h, w) < MIN_SIDE:
        raise Rejected(f"far too small: {w}x{h} px; at least {MIN_SIDE} px a side is needed")
    problem, warning = pipeline.judge(gray, alpha)
    if problem:
        raise Rejected(problem)
    notes = []
    negative = warning == pipeline.INVERTED and looks_negative(gray) > 0
    if negative and header_polarity:
        notes.append(
            "the pixels look like a negative (white background, dark bones), but the DICOM "
            "header's PhotometricInterpretation sets the polarity: taken as the header says"
        )
    elif warning == pipeline.INVERTED and not negative and not header_polarity:
        notes.append("bright background, but the bones are bright too: taken as it is")
    if not negative or header_polarity:
        box = preprocess.hand_box(gray)
        if not box.found:
            raise Rejected(f"not a hand radiograph: {box.note}")
        return [(gray, box)], notes
    back = 255 - gray
    readings = [(back, preprocess.hand_box(back)), (gray, preprocess.hand_box(gray))]
    if not any(box.found for _, box in readings):
        raise Rejected(
            f"looks inverted, and shows no hand either way: inverted back, {readings[0][1].note}"
        )
    return readings, notes


def looks_negative(gray: np.ndarray) -> float:
    """Evidence that a radiograph is a negative: > 0 when its bones look dark.

    In the central two thirds (where the hand is), the image is split at its Otsu threshold
    into a brighter and a darker part, each shrunk by a pixel so that the edge between them
    counts for neither; the result is the log ratio of the mean gradient in the darker part to
    that in the brighter part. The hand, with its bones' edges, is the textured part, and the
    background it lies on (air, or a film's field) is smooth: in a radiograph the textured part
    is the brighter one (< 0), in a negative the darker one (> 0). Unlike the brightness of the
    border, this does not depend on how light the background was exposed or scanned: normal
    radiographs with a light-gray background, or with a white collimator frame around a dark
    field, score well below 0.
    """
    h, w = gray.shape
    scale = min(1.0, preprocess.WORK_SIDE / max(h, w))
    small = cv2.resize(
        gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (3, 3), 0)
    sh, sw = small.shape
    centre = small[sh // 6 : sh - sh // 6, sw // 6 : sw - sw // 6]
    img = centre.astype(np.float32)
    edges = np.hypot(cv2.Sobel(img, cv2.CV_32F, 1, 0), cv2.Sobel(img, cv2.CV_32F, 0, 1))
    t, _ = cv2.threshold(centre, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    kernel = np.ones((3, 3), np.uint8)
    texture = []
    for part in (centre <= t, centre > t):  # darker, brighter
        inner = cv2.erode(part.astype(np.uint8), kernel).astype(bool)
        texture.append(float(edges[inner].mean()) if inner.any() else 0.0)
    return float(np.log((texture[0] + 1.0) / (texture[1] + 1.0)))


@dataclass
class Item:
    """One image to predict, with what is known of the patient and where it came from.

    ``sex_source`` and ``age_source`` are one of :data:`SOURCES`; left None, a value given with
    the item counts as the command line's. :func:`resolve` fills them, reads a DICOM header for
    what was not given, and sets ``refusal`` when the header contradicts what was.
    """

    path: Path
    sex: str | None = None  # "M" or "F"
    age: float | None = None  # chronological age, months
    sex_source: str | None = None
    age_source: str | None = None
    notes: list[str] = field(default_factory=list)
    refusal: str | None = None  # why the image is not predicted (a contradicting header)
    resolved: bool = False


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
    raise trained.UsageError(f"{where}: sex must be M or F (or male/female, 1/0), got {value!r}")


def parse_age(value: Any, where: str) -> float | None:
    """Chronological age in months (0-300), or None if empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        age = float(value)
    except (TypeError, ValueError):
        raise trained.UsageError(
            f"{where}: age must be a number of months, got {value!r}"
        ) from None
    if math.isnan(age):
        return None
    if not 0 <= age <= 300:
        raise trained.UsageError(
            f"{where}: age must be 0-300 months (a child's age), got {value!r}"
        )
    return age


def read_list(csv_path: Path) -> list[Item]:
    """Items from a CSV with a ``path`` column (relative to the CSV's folder) and optional
    ``sex`` and ``age`` (months) columns; a bad row raises trained.UsageError naming file and
    line."""
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise trained.UsageError(
            f"{csv_path} is not a readable CSV: {str(e).strip()[:200]}"
        ) from None
    df.columns = [str(c).strip().lower() for c in df.columns]
    if "path" not in df.columns:
        raise trained.UsageError(
            f"{csv_path} needs a 'path' column (and optionally 'sex', 'age'); it has "
            f"{', '.join(df.columns) or 'none'}"
        )
    items = []
    for i, row in enumerate(df.to_dict("records")):
        where = f"{csv_path}, line {i + 2}"
        p = row["path"].strip()
        if not p:
            raise trained.UsageError(f"{where}: the path is empty")
        path = Path(p) if Path(p).is_absolute() else csv_path.parent / p
        sex, age = parse_sex(row.get("sex"), where), parse_age(row.get("age"), where)
        items.append(
            Item(path, sex, age, "CSV" if sex else None, "CSV" if age is not None else None)
        )
    if not items:
        raise trained.UsageError(f"{csv_path} lists no images")
    return items


def collect(inputs: list[str], sex: str | None = None, age: float | None = None) -> list[Item]:
    """Items from files, folders (every image in them, sorted) and CSV lists.

    ``sex`` and ``age`` (the command line's) apply where a CSV row gives none; a DICOM header
    fills what neither gives (:func:`resolve`). A folder with no image is an error; a named file
    that is missing or unreadable is predicted as rejected.
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
                raise trained.UsageError(
                    f"folder {p} holds no images ({', '.join(IMAGE_SUFFIXES)})"
                )
            items += [Item(f) for f in found]
        elif p.suffix.lower() == ".csv":
            if not p.is_file():
                raise trained.UsageError(f"no such CSV file: {p}")
            items += read_list(p)
        else:
            items.append(Item(p))
    for it in items:
        if it.sex is None and sex is not None:
            it.sex, it.sex_source = sex, "command line"
        if it.age is None and age is not None:
            it.age, it.age_source = age, "command line"
        resolve(it)
    return items


def resolve(item: Item) -> None:
    """Fill ``item``'s sources, and its sex and age from a DICOM header where none was given.

    A header that contradicts a given value sets ``item.refusal`` naming both: the sex differs,
    or the age lies more than :data:`AGE_TOLERANCE_MONTHS` outside what the header allows (a
    PatientAge in years allows the whole year). A header that cannot be read is left to the
    image's own reading, which rejects the file with the reason. Runs once per item.
    """
    if item.resolved:
        return
    item.resolved = True
    item.sex_source = item.sex_source or ("command line" if item.sex else "none")
    item.age_source = item.age_source or ("command line" if item.age is not None else "none")
    if not item.path.is_file() or not dicom.is_dicom(item.path):
        return
    try:
        patient = dicom.read_patient(item.path)
    except ValueError:
        return
    item.notes += patient.notes
    conflicts = []
    if patient.sex and item.sex is None:
        item.sex, item.sex_source = patient.sex, HEADER
    elif patient.sex and patient.sex != item.sex:
        conflicts.append(
            f"sex: the {item.sex_source} says {item.sex}, its PatientSex says {patient.sex}"
        )
    if patient.age_months is not None and item.age is None:
        item.age, item.age_source = patient.age_months, HEADER
        item.notes.append(
            f"age from the DICOM header's {patient.age_from}: {patient.age_months:.1f} months"
        )
    elif patient.age_months is not None and not (
        patient.age_low - AGE_TOLERANCE_MONTHS
        <= item.age
        <= patient.age_high + AGE_TOLERANCE_MONTHS
    ):
        conflicts.append(
            f"age: the {item.age_source} says {item.age:g} months, its {patient.age_from} says "
            f"{patient.age_months:.1f}: more than {AGE_TOLERANCE_MONTHS:g} month outside what the "
            "header allows (a given age may be off by a month's rounding, not more)"
        )
    if conflicts:
        item.refusal = "the DICOM header contradicts what was given: " + "; ".join(conflicts)


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an image as PNG, atomically."""
    with results.atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write {path}")
    return path


def predict_item(
    item: Item,
    members: list[trained.Member],
    tta: bool = True,
    gradcam: bool = True,
    cal: calibration.Calibration | None = None,
) -> dict[str, Any]:
    """Predict one image with every member: a result row (see :data:`COLUMNS`), plus
    ``members`` (each model's predictions) and ``cams`` (for :func:`nblib.models.gradcam.overlay`).

    An image that looks like a negative is predicted inverted back and as given; the answer is
    the inverted-back one when the two agree (:func:`_check_polarity`), else it is refused.
    """
    resolve(item)
    rec = _blank_row(item)
    try:
        if item.refusal:
            raise Rejected(item.refusal)
        try:
            gray, alpha = read_image(item.path)
        except ValueError as e:
            raise Rejected(f"cannot be read: {e}") from None
        readings, notes = examine(gray, alpha, header_polarity=dicom.is_dicom(item.path))
        rec["notes"] += notes
        found = _predict_reading(readings[0], members, item.sex, tta, gradcam)
        if len(readings) > 1:
            other = _predict_reading(readings[1], members, item.sex, tta, False)
            _check_polarity(found, other, rec)
    except Rejected as e:
        rec.update(status="rejected", reason=str(e))
        return rec
    rec["notes"] += found["notes"]
    rec.update(
        status="ok",
        gray=readings[0][0],
        cams=found["cams"],
        members=found["members"],
        bone_age_months=found["months"],
        spread_months=found["spread"] if found["n"] > 1 else None,
        n_predictions=found["n"],
    )
    if cal is not None:
        _calibrate(rec, cal, item.sex)
    rec["bone_age_years"] = rec["bone_age_months"] / 12
    if item.age is not None:
        rec.update(sds.compare_to_age(rec["bone_age_months"], item.age, item.sex))
        if item.sex is None:
            rec["notes"].append("no SDS: the G&P table needs the sex (--sex)")
        elif rec["sds"] is None:
            last = sds.SD_TABLE[item.sex][-1][0]
            rec["notes"].append(f"no SDS: the G&P table covers ages 3-{last} months")
    return rec


def _blank_row(item: Item) -> dict[str, Any]:
    """A result row of :data:`COLUMNS` holding what is known before predicting."""
    rec: dict[str, Any] = {c: None for c in COLUMNS}
    rec.update(
        path=str(item.path),
        sex=item.sex,
        sex_source=item.sex_source,
        age_months=item.age,
        age_source=item.age_source,
        notes=list(item.notes),
        members=[],
    )
    return rec


def _calibrate(rec: dict[str, Any], cal: calibration.Calibration, sex: str | None) -> None:
    """Apply the ensemble's saved bias correction and prediction interval (fitted on its
    validation data): the corrected estimate becomes the answer, the raw one is kept."""
    raw = rec["bone_age_months"]
    male = None if sex is None else np.array([sex == "M"])
    corrected = float(cal.correct(np.array([raw]), male)[0])
    low, high = cal.interval(np.array([corrected]))
    rec.update(
        bone_age_months=corrected,
        uncorrected_months=raw,
        interval_low=float(low[0]),
        interval_high=float(high[0]),
        interval_level=cal.level,
    )
    if sex is None and "all" not in cal.bias:
        rec["notes"].append("bias corrected with both sexes' mean correction: no sex given")


def _predict_reading(
    reading: Reading, members: list[trained.Member], sex: str | None, tta: bool, gradcam: bool
) -> dict[str, Any]:
    """Every member's prediction of one reading: ``months`` (the weighted mean), ``spread`` (the
    weighted SD of all predictions), ``n``, ``members``, ``cams`` and ``notes``."""
    gray, box = reading
    out: dict[str, Any] = {"members": [], "cams": [], "notes": []}
    preds, weights = [], []
    for m in members:
        image, used = m.prep.apply(gray, box)
        variants = m.tta if tta else ("identity",)
        p, fmaps = m.predict(preprocess.tta_batch(image, variants), sex)
        preds += list(p)
        weights += [m.weight / len(p)] * len(p)
        out["members"].append(
            {
                "model": str(m.path),
                "months": float(p.mean()),
                "weight": m.weight,
                "tta": dict(zip(variants, p, strict=True)),
            }
        )
        if gradcam and fmaps is not None:  # on the first variant, flipped back (flips undo)
            heat = m.cam.heat(fmaps[0], sex, m.size)[..., None]
            out["cams"].append((preprocess.tta_batch(heat, variants[:1])[0, ..., 0], used))
        elif gradcam and f"no Grad-CAM for {m.path.name}" not in " ".join(out["notes"]):
            out["notes"].append(f"no Grad-CAM for {m.path.name}: {m.cam_problem}")
    w = np.asarray(weights) / np.sum(weights)
    out["months"] = float(w @ np.asarray(preds))  # each member's mean over its variants, weighted
    out["spread"] = float(np.sqrt(w @ (np.asarray(preds) - out["months"]) ** 2))
    out["n"] = len(preds)
    return out


def _check_polarity(back: dict[str, Any], given: dict[str, Any], rec: dict[str, Any]) -> None:
    """Compare the predictions of an image inverted back and as given; raise :class:`Rejected`
    when they differ by more than :data:`POLARITY_TOLERANCE_MONTHS` or the predictions' own
    spread (whichever is larger), else note that the polarity does not change the answer."""
    tolerance = max(POLARITY_TOLERANCE_MONTHS, back["spread"], given["spread"])
    apart = abs(back["months"] - given["months"])
    rec["polarity"] = {
        "inverted_back_months": back["months"],
        "as_given_months": given["months"],
        "tolerance_months": tolerance,
    }
    both = f"{back['months']:.1f} months inverted back, {given['months']:.1f} as given"
    if apart > tolerance:
        raise Rejected(
            f"polarity uncertain: it looks like a negative (white background, dark bones) and the "
            f"answer depends on it: {both}, {apart:.1f} apart (more than {tolerance:.1f}); if it "
            "is a negative, invert it (255 - pixel) and submit it again"
        )
    rec["notes"].append(
        f"looked like a negative (white background, dark bones): {both}, within "
        f"{tolerance:.1f} of each other; the inverted-back answer is given"
    )


def line(rec: dict[str, Any]) -> str:
    """One readable console line for a result row."""
    name = Path(rec["path"]).name
    if rec["status"] != "ok":
        return f"{name}: not analysed: {rec['reason']}"
    text = f"{name}: bone age {rec['bone_age_months']:.1f} months ({rec['bone_age_years']:.1f} y)"
    if rec["interval_low"] is not None:
        text += (
            f", {rec['interval_level']:.0%} interval {rec['interval_low']:.1f}-"
            f"{rec['interval_high']:.1f} (bias-corrected; {rec['uncorrected_months']:.1f} before)"
        )
    elif rec["spread_months"] is not None:
        text += f" (spread {rec['spread_months']:.1f} over {rec['n_predictions']} predictions; no interval)"
    if rec.get("polarity"):
        text += " [inverted back: both polarities agree]"
    if rec["age_months"] is not None:
        text += f"; age {rec['age_months']:.1f}: {rec['difference_months']:+.1f} months"
        if rec["sds"] is not None:
            text += f", SDS {rec['sds']:+.2f}"
            text += " (outside +-2 SD)" if rec["outside_2sd"] else ""
    header = [k for k in ("sex", "age") if rec[f"{k}_source"] == HEADER]
    if header:
        text += f" ({' and '.join(header)} from the DICOM header)"
    return text


def run(
    inputs: list[str],
    models: list[str | Path | trained.Member],
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
    ``gradcam/<image stem>.png`` into ``out_dir``. Returns the rows. Raises
    :class:`trained.UsageError` before predicting anything when the models cannot be used as
    asked (e.g. a model takes the sex and an image has none).
    """
    out_dir = Path(out_dir)
    items = collect(inputs, sex, age)
    members = [m for m in models if isinstance(m, trained.Member)]
    paths = [str(m) for m in models if not isinstance(m, trained.Member)]
    traced = len(items) > EAGER_UP_TO
    for p, w in trained.weighted_models(paths):
        members.append(trained.load_member(p, traced))
        members[-1].weight = w
    # the calibration of one ensemble folder, when that folder is all the models given
    cal = trained.calibration_of(paths) if len(paths) == len(models) else None
    if not members:
        raise trained.UsageError("no model given")
    _check_sex(members, items)
    rows, names = [], set()
    for item in items:
        rec = predict_item(item, members, tta, gradcam, cal)
        cams, gray = rec.pop("cams", None), rec.pop("gray", None)
        if cams:
            stem = _unique(item.path.stem, names)
            rec["gradcam"] = str(
                write_png(out_dir / "gradcam" / f"{stem}.png", grad_cam.overlay(gray, cams))
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
            "sd_table": sds.SD_TABLE_SOURCE,
            "predictions": rows,
            "provenance": provenance.provenance(),
        },
    )
    return rows


def _check_sex(members: list[trained.Member], items: list[Item]) -> None:
    """Refuse to start when a model takes the sex and an image (not already refused) has none."""
    needing = [m.path for m in members if m.needs_sex]
    missing = [str(it.path) for it in items if it.sex is None and not it.refusal]
    if needing and missing:
        raise trained.UsageError(
            f"model {needing[0]} takes the patient's sex (input 'sex'): give --sex M or F, a "
            f"'sex' column in the CSV, or DICOM files with PatientSex; missing for "
            f"{', '.join(missing[:5])}"
            + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        )


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


@contextlib.contextmanager
def framework_quiet(verbose: bool = False):
    """Keep TensorFlow's, CUDA's, JAX's and Keras's own messages off the console while the
    command runs (:func:`nblib.core.quiet.silenced`): they say nothing about the patient. A
    failure other than a usage error replays them on stderr; ``verbose`` shows them as they come.
    """
    with quiet.silenced(verbose, keep=(trained.UsageError,)):
        yield


def main(argv: list[str] | None = None) -> int:
    """The command line: parse, predict inside :func:`framework_quiet`, 2 on a usage error.

    Nothing here imports TensorFlow: Keras is imported when the first model loads, inside the
    quiet block, so its environment is set first.
    """
    args = _parser().parse_args(argv)
    try:
        with framework_quiet(args.verbose):
            run(
                args.inputs,
                args.model,
                args.out,
                parse_sex(args.sex, "--sex"),
                parse_age(args.age, "--age"),
                args.tta,
                args.gradcam,
            )
    except trained.UsageError as e:
        print(f"boneage-predict: error: {e}", file=sys.stderr)
        return 2
    print(f"Results in {Path(args.out).resolve()}")
    return 0


def _parser() -> argparse.ArgumentParser:
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
    ap.add_argument(
        "--sex",
        help="M or F (needed by models that take the sex, and for the SDS); DICOM "
        "files without it take their header's PatientSex",
    )
    ap.add_argument(
        "--age",
        help="chronological age in months: adds bone age - age and the SDS; DICOM "
        "files without it take their header's age",
    )
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
    ap.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's, CUDA's and Keras's own log lines and warnings on stderr",
    )
    return ap


def cli() -> None:
    """The console command (``boneage-predict``, ``python -m nblib.apps.predict``): :func:`main`,
    then an immediate exit with its code. Every result is written and closed by then and the
    console streams are flushed here; what is skipped is the interpreter's teardown of the
    frameworks, 1-1.5 s of every call on a 2-core CPU (``benchmarks/cpu.md``)."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    cli()
