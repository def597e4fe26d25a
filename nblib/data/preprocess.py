"""Preprocessing beyond the papers: contrast, a crop to the hand, and how a saved model records them.

The faithful models take the whole radiograph resized to ``S x S`` (``nblib.data.pipeline``). A model
trained with other preprocessing says so in a sidecar file beside it,
``<model file stem>.preprocess.json`` (``model.keras`` -> ``model.preprocess.json``), so that
prediction repeats exactly what training saw. Without a sidecar, preprocessing is the series'
own: ``Preprocessing(size=S)``, i.e. ``pipeline.resize`` of the decoded image.

:func:`hand_box` finds the hand from the image alone (blur, Otsu threshold, morphology, the
largest plausible connected component, its bounding box plus a margin, made square); it uses no
external masks, and says when it found no plausible hand instead of failing.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nblib.core import results
from nblib.data import pipeline

CROPS = ("none", "hand")
CONTRASTS = ("none", "clahe", "standardize")
INPUTS = ("image", "sex")  # the input names a saved model may have
TTA = ("identity", "flip_lr", "flip_ud", "flip_both")  # test-time variants: the training flips
SIDECAR_SUFFIX = ".preprocess.json"

CLAHE_CLIP, CLAHE_TILES = 2.0, (8, 8)
STANDARDIZE_SD = 3.0  # "standardize" maps -3..+3 SD of the image onto 0..255

WORK_SIDE = 256  # hand_box works on a copy whose longest side is this
MARGIN = 0.08  # of the hand's larger side, added around its bounding box
GROW = 0.15  # of the image's longest side: how far fainter soft tissue may extend the bright core
MIN_AREA, MAX_AREA = 0.03, 0.95  # plausible fraction of the image a hand covers
MIN_LIFT = 6  # gray levels; the faintest hand of the 1,000 RSNA sample images stands 10 above
FIELD_FILL = 0.9  # a component filling more of its box than this is a field, not a hand


def contrast(gray: np.ndarray, method: str) -> np.ndarray:
    """uint8 gray image with ``method``'s contrast: ``none``, ``clahe`` or ``standardize``.

    ``clahe``: OpenCV's contrast-limited adaptive histogram equalisation (clip 2.0, 8x8 tiles),
    which evens out exposure between and within radiographs. ``standardize``: per-image zero
    mean and unit SD, then the fixed map -3 SD -> 0, +3 SD -> 255 (clipped), so the model still
    takes uint8 and every image spans the same range. A flat image stays flat (mid-gray).
    """
    gray = _gray_uint8(gray)
    if method == "none":
        return gray
    if method == "clahe":
        return cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES).apply(gray)
    if method == "standardize":
        x = gray.astype(np.float32)
        sd = float(x.std())
        z = (x - float(x.mean())) / sd if sd > 0 else np.zeros_like(x)
        scaled = (z + STANDARDIZE_SD) * (255.0 / (2 * STANDARDIZE_SD))
        return np.clip(np.round(scaled), 0, 255).astype(np.uint8)
    raise ValueError(f"contrast must be one of {', '.join(CONTRASTS)}; got {method!r}")


class Box(tuple):
    """``(x0, y0, x1, y1)`` in pixels (ends exclusive), with ``found`` and ``note``.

    ``found`` is False when no plausible hand was found and the box is the whole image; ``note``
    then says why. It unpacks like a plain 4-tuple.
    """

    def __new__(cls, x0: int, y0: int, x1: int, y1: int, found: bool = True, note: str = ""):
        box = super().__new__(cls, (int(x0), int(y0), int(x1), int(y1)))
        box.found, box.note = bool(found), note
        return box

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self[2] - self[0], self[3] - self[1]


def full_box(gray: np.ndarray, note: str = "") -> Box:
    """The whole image as a box; ``found`` is False when a ``note`` says why no hand was used."""
    h, w = gray.shape[:2]
    return Box(0, 0, w, h, found=not note, note=note)


def hand_box(gray: np.ndarray) -> Box:
    """The hand's bounding box in ``gray`` (uint8, H x W), with a margin, made square-ish.

    Works on a copy whose longest side is 256 px: Gaussian blur, Otsu threshold (radiographs show
    the hand bright on a dark background), an opening that removes thin border lines and small
    markers, a closing that joins fingers to the palm, then the largest connected component
    covering 3-95% of the image and at least 6 gray levels brighter (median) than the rest, grown
    into the fainter soft tissue joined to it (:func:`_grow`).
    A component that fills its box almost completely, or nearly the whole image, is a lighter
    field (a plate or the collimated area) holding the hand: the threshold is repeated inside it.
    The box grows by 8% of the hand's larger side and then to a square where the image allows, so
    that the resize to ``S x S`` does not distort the hand. If nothing plausible is found, the
    whole image is returned with ``found=False`` and a ``note``.
    """
    gray = _gray_uint8(gray)
    h, w = gray.shape
    scale = min(1.0, WORK_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    small = base = cv2.GaussianBlur(small, (5, 5), 0)
    # Side markers and labels are small but far brighter than bone: clipping the top 2% of
    # gray levels keeps them from pulling the threshold above a faint hand.
    lo, hi = np.percentile(small, (1, 98))
    if hi > lo:
        small = np.clip((small.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
        small = small.astype(np.uint8)
    if float(small.std()) < pipeline.BLANK_STD:
        return full_box(gray, "the image is flat: no foreground to find a hand in")
    region = np.ones(small.shape, bool)
    comp = None
    for _ in range(2):  # the whole image, then once inside a field that holds the hand
        found = _largest_component(small, region)
        if found is None:
            break
        mask, area, fill = found
        if area <= MAX_AREA:
            comp, where = mask, region
            if fill <= FIELD_FILL:
                break
        region = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if comp is None:
        return full_box(
            gray,
            f"no bright foreground component covering {MIN_AREA:.0%}-{MAX_AREA:.0%} of the image "
            "(a hand radiograph shows a bright hand on a dark background)",
        )
    lift = float(np.median(base[comp])) - float(np.median(base[~comp]))
    if lift < MIN_LIFT:
        return full_box(
            gray,
            f"the brightest region is only {lift:.0f} gray levels above the rest of the image "
            f"(a hand stands at least {MIN_LIFT} above its background)",
        )
    comp = _grow(small, comp, where)
    ys, xs = np.nonzero(comp)
    x0, x1 = xs.min() / scale, (xs.max() + 1) / scale
    y0, y1 = ys.min() / scale, (ys.max() + 1) / scale
    return _square(x0, y0, x1, y1, w, h)


def _largest_component(small: np.ndarray, region: np.ndarray):
    """The largest component of the Otsu foreground inside ``region`` that covers at least 3% of
    the image: ``(mask, fraction of the image, fraction of its bounding box)``, or None."""
    values = small[region]
    if values.size == 0 or float(values.std()) < pipeline.BLANK_STD:
        return None
    n, labels, stats = _components(small, otsu_thresholds(values, 2)[0], region)
    if n < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    area = float(stats[best, cv2.CC_STAT_AREA])
    if area < MIN_AREA * small.size:
        return None
    box = float(stats[best, cv2.CC_STAT_WIDTH] * stats[best, cv2.CC_STAT_HEIGHT])
    return labels == best, area / small.size, area / box


def _components(small: np.ndarray, t: int, region: np.ndarray, k: int | None = None):
    """Connected components of ``small > t`` inside ``region`` after an opening (which drops
    thin border lines and small markers) and a closing (which joins fingers to the palm)."""
    mask = ((small > t) & region).astype(np.uint8)
    k = k or max(3, round(max(small.shape) / 50)) | 1  # odd, ~5 px at 256
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_OPEN, disk), cv2.MORPH_CLOSE, disk)
    return cv2.connectedComponentsWithStats(mask, connectivity=8)[:3]


def _grow(small: np.ndarray, core: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The hand grown from its bright core to the fainter soft tissue joined to it.

    Fingers are darker than palm and forearm: a two-class cut between a dark background and a
    bright forearm can lose them. The lower cut of a three-class Otsu (background, soft tissue,
    bone) keeps them; the parts of that larger mask which touch the core are kept, but only
    within 15% of the image's size of the core, so that a lower cut reaching into a graded
    background cannot take the whole image.
    """
    t_low = otsu_thresholds(small[region], 3)[0]
    _, labels, _ = _components(small, t_low, region, k=3)
    touching = np.unique(labels[core & (labels > 0)])
    r = max(3, round(GROW * max(small.shape)))
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    near = cv2.dilate(core.astype(np.uint8), disk)
    return (np.isin(labels, touching) & near.astype(bool)) | core


def otsu_thresholds(values: np.ndarray, classes: int = 2) -> list[int]:
    """Otsu's thresholds splitting uint8 ``values`` into 2 or 3 classes (largest between-class
    variance); a value ``> t`` is above the cut. Three classes suit radiographs (background, soft
    tissue, bone): the lower cut keeps the fingers' soft tissue, which a two-class cut between a
    dark background and a bright forearm can lose."""
    hist = np.bincount(np.asarray(values, np.uint8).ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    cw = np.concatenate([[0.0], np.cumsum(p)])  # cw[k]: weight of levels 0..k-1
    cm = np.concatenate([[0.0], np.cumsum(p * np.arange(256))])  # and their first moment

    def part(lo, hi):  # levels lo..hi-1: weight * mean**2, the class's share of the variance
        wi, mi = cw[hi] - cw[lo], cm[hi] - cm[lo]
        return np.where(wi > 0, mi**2 / np.maximum(wi, 1e-12), 0.0)

    if classes == 2:
        t = np.arange(255)
        return [int(np.argmax(part(0, t + 1) + part(t + 1, 256)))]
    if classes != 3:
        raise ValueError(f"classes must be 2 or 3, got {classes}")
    t1, t2 = np.triu_indices(255, k=1)  # every cut pair t1 < t2
    score = part(0, t1 + 1) + part(t1 + 1, t2 + 1) + part(t2 + 1, 256)
    best = int(np.argmax(score))
    return [int(t1[best]), int(t2[best])]


def _square(x0: float, y0: float, x1: float, y1: float, w: int, h: int) -> Box:
    """The box plus a margin, grown to a square (centred, shifted to stay inside the image)."""
    side = max(x1 - x0, y1 - y0) * (1 + 2 * MARGIN)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def span(centre: float, limit: int) -> tuple[int, int]:
        length = min(side, limit)
        lo = min(max(0.0, centre - length / 2), limit - length)
        return int(np.floor(lo)), int(min(limit, np.ceil(lo + length)))

    bx0, bx1 = span(cx, w)
    by0, by1 = span(cy, h)
    return Box(bx0, by0, bx1, by1)


def _gray_uint8(gray: np.ndarray) -> np.ndarray:
    gray = np.asarray(gray)
    if gray.ndim == 3 and gray.shape[2] == 1:
        gray = gray[..., 0]
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(
            f"expected a uint8 gray image (H x W), got {gray.dtype} of shape {gray.shape}"
        )
    return gray


@dataclass(frozen=True)
class Preprocessing:
    """How a model's input is made from a decoded gray radiograph: crop, contrast, resize.

    ``crop``: ``none`` (the whole image, as the papers) or ``hand`` (:func:`hand_box`).
    ``contrast``: ``none``, ``clahe`` or ``standardize`` (:func:`contrast`), applied to the crop at
    full resolution. Then :func:`nblib.data.pipeline.resize` to ``size x size``. The default,
    ``crop="none", contrast="none"``, is exactly the series' input pipeline.
    """

    size: int
    crop: str = "none"
    contrast: str = "none"

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int | np.integer):
            raise ValueError(f"size must be a whole number of pixels, got {self.size!r}")
        if self.size < 8:
            raise ValueError(f"size must be at least 8 px, got {self.size}")
        if self.crop not in CROPS:
            raise ValueError(f"crop must be one of {', '.join(CROPS)}; got {self.crop!r}")
        if self.contrast not in CONTRASTS:
            raise ValueError(
                f"contrast must be one of {', '.join(CONTRASTS)}; got {self.contrast!r}"
            )

    def apply(self, gray: np.ndarray, box: Box | None = None) -> tuple[np.ndarray, Box]:
        """Full-size uint8 gray -> (uint8 ``[S, S, 1]``, the box the input was taken from).

        ``box`` reuses a :func:`hand_box` already computed for this image. With ``crop="none"``
        the box is the whole image.
        """
        gray = _gray_uint8(gray)
        if self.crop == "hand":
            box = box if box is not None else hand_box(gray)
        else:
            box = full_box(gray)
        x0, y0, x1, y1 = box
        out = contrast(gray[y0:y1, x0:x1], self.contrast)
        return pipeline.resize(out, self.size)[..., None], box

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "preprocessing") -> Preprocessing:
        """Build from a dict (a sidecar's ``preprocessing``); unknown keys are refused by name."""
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected an object with size, crop, contrast; got {d!r}")
        unknown = sorted(set(d) - {"size", "crop", "contrast"})
        if unknown:
            raise ValueError(f"{source}: unknown key(s) {', '.join(unknown)}")
        if "size" not in d:
            raise ValueError(f"{source}: 'size' is missing")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None


def sidecar_path(model_path: Path | str) -> Path:
    """``dir/model.keras`` -> ``dir/model.preprocess.json``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + SIDECAR_SUFFIX)


def save_sidecar(
    model_path: Path | str, prep: Preprocessing, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``<model stem>.preprocess.json`` beside ``model_path``, atomically.

    ``extra`` may hold ``inputs`` (the model's inputs in order, from ``image`` and ``sex``) and
    ``tta`` (test-time variants, from ``identity``, ``flip_lr``, ``flip_ud``, ``flip_both``), plus
    any notes; they are checked as :func:`load_sidecar` checks them.
    """
    doc = {"preprocessing": prep.to_dict(), **(extra or {})}
    path = sidecar_path(model_path)
    _check_extra(doc, str(path))
    return results.write_json(path, doc)


def load_sidecar(model_path: Path | str) -> tuple[Preprocessing, dict[str, Any]] | None:
    """``(Preprocessing, the other keys)`` from the model's sidecar, or None if it has none.

    A damaged or invalid sidecar raises ValueError naming the file and what is wrong.
    """
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"Preprocessing sidecar {path} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or "preprocessing" not in doc:
        raise ValueError(f"Preprocessing sidecar {path} has no 'preprocessing' object")
    prep = Preprocessing.from_dict(doc["preprocessing"], source=f"Preprocessing sidecar {path}")
    _check_extra(doc, str(path))
    return prep, {k: v for k, v in doc.items() if k != "preprocessing"}


def _check_extra(doc: dict[str, Any], source: str) -> None:
    for key, allowed in (("inputs", INPUTS), ("tta", TTA)):
        if key not in doc:
            continue
        value = doc[key]
        if (
            not isinstance(value, list)
            or not value
            or any(v not in allowed for v in value)
            or len(set(value)) != len(value)
        ):
            raise ValueError(
                f"{source}: '{key}' must be a non-empty list of distinct names from "
                f"{', '.join(allowed)}; got {value!r}"
            )
    if "inputs" in doc and doc["inputs"][0] != "image":
        raise ValueError(f"{source}: 'inputs' must start with 'image'; got {doc['inputs']!r}")


def tta_batch(image: np.ndarray, variants: list[str] | tuple[str, ...]) -> np.ndarray:
    """One ``[S, S, C]`` image -> ``[len(variants), S, S, C]``, flipped as each variant says.

    Each flip is its own inverse: the same call flips a heat map of a variant back.
    """
    flips = {
        "identity": lambda x: x,
        "flip_lr": lambda x: x[:, ::-1],
        "flip_ud": lambda x: x[::-1, :],
        "flip_both": lambda x: x[::-1, ::-1],
    }
    unknown = [v for v in variants if v not in flips]
    if unknown:
        raise ValueError(f"unknown test-time variant(s) {unknown}; choose from {', '.join(TTA)}")
    return np.stack([np.ascontiguousarray(flips[v](image)) for v in variants])
