"""Placeholder interface (replaced on merge)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np

from nblib import pipeline


def contrast(gray, method="none"):
    if method == "clahe":
        return cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(gray)
    return gray


def hand_box(gray):
    h, w = gray.shape
    blur = cv2.GaussianBlur(gray, (5, 5), 0)
    _, m = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(m)
    if n < 2:
        return {"x0": 0, "y0": 0, "x1": w, "y1": h, "found": False}
    i = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, bw, bh = stats[i, :4]
    return {"x0": int(x), "y0": int(y), "x1": int(x + bw), "y1": int(y + bh), "found": True}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    size: int
    crop: str = "none"
    contrast: str = "none"

    def apply(self, gray):
        box = None
        if self.crop == "hand":
            box = hand_box(gray)
            gray = gray[box["y0"] : box["y1"], box["x0"] : box["x1"]]
        img = pipeline.resize(gray, self.size)
        img = contrast(img, self.contrast)
        return img[..., None], box


def save_sidecar(model_path, prep, extra):
    p = Path(model_path)
    p.with_name(p.stem + ".preprocess.json").write_text(json.dumps({**dataclasses.asdict(prep), **extra}))
