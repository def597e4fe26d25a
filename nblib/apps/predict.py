"""Bone age of a patient's radiograph from trained models: ``python -m nblib.apps.predict``.

``boneage-predict hand.png --model runs/sample/03_resnet50/model.keras --sex F --age 130``

Inputs: PNG (8 or 16 bits; 16-bit files are scaled by their real bit depth, as the series does),
JPEG, DICOM (modality LUT or rescale, then VOI LUT or window, then MONOCHROME1 inverted), a folder
of such images, or a CSV with a ``path`` column and optional ``sex`` and ``age`` (months) columns.
Models: one or more ``.keras`` files the series saved, or run folders holding ``model.keras``
files; several models form an ensemble. Each model's input is made as it was in training: its
``<stem>.preprocess.json`` sidecar when it has one (``nblib.data.preprocess``), else the series'
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from nblib.apps import sds, trained
from nblib.core import provenance, results
from nblib.data import dicom, pipeline, preprocess
from nblib.models import gradcam as grad_cam

MIN_SIDE = 64  # px: a smaller picture of a hand shows no bones worth measuring


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")


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


def examine(gray: np.ndarray, alpha: np.ndarray | None) -> tuple[np.ndarray, preprocess.Box, list]:
    """Judge a decoded image: ``(image to use, hand box, notes)``, or raise :class:`Rejected`.

    The series' data checks (:func:`nblib.data.pipeline.judge`) reject blank pictures; an image that
    looks inverted (white background) is inverted back and noted, and rejected if no hand stands
    out even then; any image with no plausible hand (:func:`nblib.data.preprocess.hand_box`) is
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
    ``sex`` and ``age`` (months) columns; a bad row raises trained.UsageError naming file and line."""
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
        items.append(Item(path, parse_sex(row.get("sex"), where), parse_age(row.get("age"), where)))
    if not items:
        raise trained.UsageError(f"{csv_path} lists no images")
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
        it.sex = it.sex or sex
        it.age = it.age if it.age is not None else age
    return items


def write_png(path: Path, image: np.ndarray) -> Path:
    """Write an image as PNG, atomically."""
    with results.atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"could not write {path}")
    return path


def predict_item(
    item: Item, members: list[trained.Member], tta: bool = True, gradcam: bool = True
) -> dict[str, Any]:
    """Predict one image with every member: a result row (see :data:`COLUMNS`), plus
    ``members`` (each model's predictions) and ``cams`` (for :func:`nblib.models.gradcam.overlay`)."""
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
        rec.update(sds.compare_to_age(months, item.age, item.sex))
        if item.sex is None:
            rec["notes"].append("no SDS: the G&P table needs the sex (--sex)")
        elif rec["sds"] is None:
            last = sds.SD_TABLE[item.sex][-1][0]
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
    ``gradcam/<image stem>.png`` into ``out_dir``. Returns the rows. Raises :class:`trained.UsageError`
    before predicting anything when the models cannot be used as asked (e.g. a model takes the
    sex and an image has none).
    """
    out_dir = Path(out_dir)
    items = collect(inputs, sex, age)
    members = [m for m in models if isinstance(m, trained.Member)]
    paths = [str(m) for m in models if not isinstance(m, trained.Member)]
    for p, w in trained.weighted_models(paths):
        members.append(trained.load_member(p))
        members[-1].weight = w
    if not members:
        raise trained.UsageError("no model given")
    needing = [m.path for m in members if m.needs_sex]
    missing = [str(it.path) for it in items if it.sex is None]
    if needing and missing:
        raise trained.UsageError(
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
    except trained.UsageError as e:
        print(f"boneage-predict: error: {e}", file=sys.stderr)
        return 2
    print(f"Results in {Path(args.out).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
