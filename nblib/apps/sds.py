"""Bone age against chronological age: the standard deviation score against the Greulich & Pyle
(Brush Foundation) table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

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
