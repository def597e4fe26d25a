"""DICOM radiographs to 8-bit gray: modality LUT or rescale, VOI LUT or window, MONOCHROME1 inverted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")


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
