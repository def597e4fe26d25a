"""DICOM radiographs to 8-bit gray (modality LUT or rescale, VOI LUT or window, MONOCHROME1
inverted), and the patient's sex and age from the header.

The polarity comes from the header alone (PhotometricInterpretation, after the VOI LUT): a DICOM
file says how it is to be displayed, so no guess from the pixels overrides it.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")
DAYS_PER_MONTH = 365.25 / 12
AGE_UNITS = {"D": 1 / DAYS_PER_MONTH, "W": 7 / DAYS_PER_MONTH, "M": 1.0, "Y": 12.0}  # -> months
AGE_NAMES = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}
MAX_AGE_MONTHS = 300  # a child's age; an older one is not used (the models know children only)


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
    pydicom = _pydicom(path)
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


def _pydicom(path: Path | str):
    try:
        import pydicom
    except ImportError:
        raise ValueError(
            f"{path} is DICOM, which needs pydicom: pip install 'boneage-repro[dicom]'"
        ) from None
    return pydicom


@dataclass
class Patient:
    """What a DICOM header says of the patient, for :mod:`nblib.apps.predict`.

    ``age_low``-``age_high`` is the range the header allows: PatientAge ``011Y`` means 11 full
    years, so anything from 132 to 144 months; ``age_months`` is its middle, which is off by at
    most half a unit. Dates give the age to the day (low = high). ``age_from`` says which
    elements gave the age; ``notes`` name elements that were present but not usable.
    """

    sex: str | None = None  # "M" or "F"
    age_months: float | None = None
    age_low: float | None = None
    age_high: float | None = None
    age_from: str = ""
    notes: list[str] = field(default_factory=list)


def read_patient(path: Path | str) -> Patient:
    """Sex (PatientSex M/F) and chronological age of a DICOM file's patient, from its header.

    The age comes from StudyDate minus PatientBirthDate when both are valid dates (exact to the
    day), else from PatientAge (``nnnD``, ``nnnW``, ``nnnM`` or ``nnnY``). PatientSex ``O``
    (other) gives no sex. Reads the header only (not the pixels). Raises ValueError naming the
    file when it cannot be read.
    """
    pydicom = _pydicom(path)
    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=True)
    except Exception as e:  # noqa: BLE001 - pydicom raises many kinds for a damaged file
        raise ValueError(f"cannot read DICOM {path}: {str(e).strip()[:200]}") from None
    out = Patient()
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    if sex in ("M", "F"):
        out.sex = sex
    elif sex:
        out.notes.append(f"the DICOM header's PatientSex is {sex!r}, not M or F: not used")
    by_age = _patient_age(ds.get("PatientAge"), out.notes)
    by_dates = _age_from_dates(ds.get("StudyDate"), ds.get("PatientBirthDate"), out.notes)
    chosen = by_dates or by_age
    if chosen:
        out.age_months, out.age_low, out.age_high, out.age_from = chosen
    if by_dates and by_age and not by_age[1] - 1 <= by_dates[0] <= by_age[2] + 1:
        out.notes.append(
            f"the DICOM header disagrees with itself: {by_dates[3]} gives "
            f"{by_dates[0]:.1f} months, {by_age[3]}; the dates are used"
        )
    return out


def _patient_age(value, notes: list[str]) -> tuple | None:
    """``(months, low, high, description)`` from a PatientAge such as ``011Y``, or None."""
    text = str(value or "").strip().upper()
    if not text:
        return None
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY])", text)
    if not match:
        notes.append(f"the DICOM header's PatientAge {text!r} is not nnnD/W/M/Y: not used")
        return None
    n, unit = int(match.group(1)), match.group(2)
    low, high = n * AGE_UNITS[unit], (n + 1) * AGE_UNITS[unit]
    months = (low + high) / 2
    if months > MAX_AGE_MONTHS:
        notes.append(
            f"the DICOM header's PatientAge {text} is beyond a child's age "
            f"(0-{MAX_AGE_MONTHS} months): not used"
        )
        return None
    what = f"PatientAge {text} ({n} to {n + 1} {AGE_NAMES[unit]}: {low:.1f}-{high:.1f} months)"
    return months, low, high, what


def _age_from_dates(study, birth, notes: list[str]) -> tuple | None:
    """``(months, months, months, description)`` from StudyDate minus PatientBirthDate, or None."""
    if not study or not birth:
        return None
    try:
        days = (_date(study) - _date(birth)).days
    except ValueError:
        notes.append(
            f"the DICOM header's StudyDate {study!s} or PatientBirthDate {birth!s} is not a "
            "YYYYMMDD date: not used"
        )
        return None
    months = days / DAYS_PER_MONTH
    if not 0 <= months <= MAX_AGE_MONTHS:
        notes.append(
            f"the DICOM header's StudyDate {study!s} minus PatientBirthDate {birth!s} is "
            f"{months:.1f} months, outside 0-{MAX_AGE_MONTHS}: not used"
        )
        return None
    return months, months, months, f"StudyDate {study!s} - PatientBirthDate {birth!s}"


def _date(value) -> datetime.date:
    return datetime.datetime.strptime(str(value).strip()[:8], "%Y%m%d").date()
