"""The synthetic hand phantom: procedural hand radiographs whose maturation follows age and sex.

A teaching and testing asset, not a substitute for real radiographs. It is written in the RSNA
Kaggle layout (three label tables in their three dialects, PNG folders) so that the same code
serves synthetic and real data, and so that a model can genuinely learn age from pixels.

What age drives: hand size and bone lengths; each epiphysis appearing, growing
relative to its metaphysis, capping it, and its growth plate closing to fusion (distal phalanges
first, the radius last); carpal ossification centres appearing in their usual order and growing.
Girls mature about 1.5-2 years earlier: their skeletal clock runs faster. Nuisance factors
(rotation, shift, scale, exposure, contrast, noise, background gradient, border frame, side
marker) keep the task from being trivial. Same seed, same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from nblib.core import progress

VERSION = 2
AGE_MEAN, AGE_SD, AGE_MIN, AGE_MAX = 127.0, 41.0, 1.0, 228.0
MALE_FRACTION = 0.54
FEMALE_CLOCK = 1.13  # girls' skeletal age runs ~13% ahead: ~1.7 years by age 13

# Carpal ossification centres: (name, onset in male-equivalent months, radius, x, y) in hand units.
CARPALS = [
    ("capitate", 2, 0.050, 0.005, -0.045),
    ("hamate", 4, 0.043, 0.085, -0.035),
    ("triquetrum", 30, 0.035, 0.11, 0.035),
    ("lunate", 44, 0.036, 0.035, 0.05),
    ("trapezium", 66, 0.036, -0.12, -0.02),
    ("trapezoid", 70, 0.030, -0.065, -0.05),
    ("scaphoid", 72, 0.040, -0.065, 0.04),
    ("pisiform", 126, 0.022, 0.13, 0.075),
]
# Rays (thumb .. little): base point, angle from vertical (deg), metacarpal length, phalanx lengths.
RAYS = [
    ((-0.135, -0.02), -38.0, 0.24, (0.17, 0.13)),
    ((-0.065, -0.10), -9.0, 0.37, (0.22, 0.13, 0.10)),
    ((0.000, -0.11), 0.0, 0.36, (0.245, 0.155, 0.105)),
    ((0.062, -0.10), 8.0, 0.33, (0.23, 0.145, 0.10)),
    ((0.118, -0.08), 17.0, 0.29, (0.18, 0.11, 0.09)),
]
# Fusion of growth plates in male-equivalent months: distal phalanges first, radius last.
FUSION = {
    "distal": 176,
    "middle": 184,
    "proximal": 190,
    "metacarpal": 196,
    "ulna": 204,
    "radius": 212,
}
EPI_ONSET = {"distal": 20, "middle": 26, "proximal": 16, "metacarpal": 20, "ulna": 80, "radius": 12}


def skeletal_age(age_months: float, male: bool) -> float:
    """Male-equivalent maturity in months: girls' clock runs faster."""
    return float(age_months) * (1.0 if male else FEMALE_CLOCK)


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


class _Canvas:
    """Two float layers (soft tissue, bone) drawn through one affine map from hand units to pixels."""

    def __init__(self, h: int, w: int, m: np.ndarray):
        self.soft = np.zeros((h, w), np.float32)
        self.bone = np.zeros((h, w), np.float32)
        self.m = m  # 2x3: hand units -> pixels
        self.scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))

    def pts(self, p: np.ndarray) -> np.ndarray:
        p = np.atleast_2d(np.asarray(p, np.float64))
        return (p @ self.m[:, :2].T + self.m[:, 2]).round().astype(np.int32)

    def ellipse(self, layer, c, rx, ry, angle_deg, value, mode="max"):
        n = 24
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        a = math.radians(angle_deg)
        x, y = rx * np.cos(t), ry * np.sin(t)
        p = np.stack(
            [c[0] + x * math.cos(a) - y * math.sin(a), c[1] + x * math.sin(a) + y * math.cos(a)], 1
        )
        self.poly(layer, p, value, mode)

    def poly(self, layer, p, value, mode="max"):
        img = getattr(self, layer)
        q = self.pts(p)
        x0, y0 = np.maximum(q.min(0) - 1, 0)
        x1, y1 = np.minimum(q.max(0) + 2, [img.shape[1], img.shape[0]])
        if x1 <= x0 or y1 <= y0:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [q - [x0, y0]], 1)
        roi = img[y0:y1, x0:x1]
        if mode == "max":
            np.maximum(roi, mask * np.float32(value), out=roi)
        else:  # "set"
            roi[mask > 0] = value


def _bone(cv: _Canvas, p0, direction, length, width, value, head=1.15):
    """A long bone from p0 along direction: shaft, slightly wider ends, brighter cortex."""
    d = np.asarray(direction) / np.linalg.norm(direction)
    n = np.array([-d[1], d[0]])
    p0 = np.asarray(p0)
    p1 = p0 + d * length
    waist = 0.75
    quad = [
        p0 + n * width / 2 * head,
        p0 + d * length * 0.5 + n * width / 2 * waist,
        p1 + n * width / 2 * head,
        p1 - n * width / 2 * head,
        p0 + d * length * 0.5 - n * width / 2 * waist,
        p0 - n * width / 2 * head,
    ]
    cv.poly("bone", np.array(quad), value)
    ang = math.degrees(math.atan2(d[1], d[0]))
    cv.ellipse("bone", p0 + d * width * 0.25, width * 0.3, width * head * 0.55, ang, value)
    cv.ellipse("bone", p1 - d * width * 0.25, width * 0.3, width * head * 0.55, ang, value)
    # medulla: a darker core leaves the cortex bright at the edges
    core = [
        p0 + d * length * 0.15 + n * width * 0.18,
        p1 - d * length * 0.15 + n * width * 0.18,
        p1 - d * length * 0.15 - n * width * 0.18,
        p0 + d * length * 0.15 - n * width * 0.18,
    ]
    cv.poly("bone", np.array(core), value * 0.86, mode="set")
    return p1


def _epiphysis(cv: _Canvas, at, direction, width, sk, kind, value, side=-1):
    """The epiphysis at one end of a bone: appears, widens, caps, and fuses with age.

    ``side=-1``: it sits before ``at`` along ``direction`` (proximal end); ``+1``: after it.
    """
    onset, fuse = EPI_ONSET[kind], FUSION[kind]
    if sk < onset:
        return
    grow = _ramp(sk, onset, onset + 110) ** 0.8  # width relative to the metaphysis
    rel_w = 0.25 + 0.8 * grow + 0.08 * _ramp(sk, fuse - 40, fuse - 10)  # caps it late in puberty
    gap = 0.35 * width * (1 - _ramp(sk, fuse - 30, fuse))  # growth plate closes to fusion
    thick = width * (0.18 + 0.22 * grow)
    d = np.asarray(direction) / np.linalg.norm(direction)
    centre = np.asarray(at) + side * d * (gap + thick / 2)
    ang = math.degrees(math.atan2(d[1], d[0]))
    cv.ellipse("bone", centre, thick / 2, width * rel_w / 2, ang, value)
    if sk >= fuse:  # a faint physeal scar for a year after fusion
        fade = 1 - _ramp(sk, fuse, fuse + 12)
        if fade > 0:
            n = np.array([-d[1], d[0]])
            line = [
                at + n * width * 0.45,
                at + n * width * 0.45 + d * width * 0.04,
                at - n * width * 0.45 + d * width * 0.04,
                at - n * width * 0.45,
            ]
            cv.poly("bone", np.array(line), value * (1 - 0.15 * fade), mode="set")
    elif gap > 0:  # the physis: a dark band between epiphysis and metaphysis
        n = np.array([-d[1], d[0]])
        band = [
            at + n * width * 0.55,
            at + n * width * 0.55 + side * d * gap,
            at - n * width * 0.55 + side * d * gap,
            at - n * width * 0.55,
        ]
        cv.poly("bone", np.array(band), 0.0, mode="set")
        cv.ellipse("bone", centre, thick / 2, width * rel_w / 2, ang, value)


@dataclasses.dataclass
class _Hand:
    """What age and sex set for one hand: skeletal age, maturity, proportions, mineralisation."""

    sk: float  # skeletal age, male-equivalent months
    mat: float  # maturity 0-1 over the skeletal clock
    slender: float  # girls' bones are slimmer
    lengths: float  # fingers lengthen relative to the palm with age
    bw: float  # bone width in hand units
    density: float  # mineralisation: young bones are fainter
    rng: np.random.Generator

    @classmethod
    def of(cls, age_months: float, male: bool, rng: np.random.Generator) -> _Hand:
        sk = skeletal_age(age_months, male)
        mat = _ramp(sk, 0, 216)
        slender = 1.0 if male else 0.94
        lengths = 0.72 + 0.28 * mat
        bw = (0.052 + 0.006 * mat) * slender
        return cls(sk, mat, slender, lengths, bw, 0.55 + 0.35 * mat, rng)

    def val(self) -> float:
        """A bone's brightness: the hand's mineralisation with a per-bone jitter."""
        return self.density * self.rng.uniform(0.93, 1.05)


def _placement(h: int, w: int, hand: _Hand, male: bool) -> tuple[float, np.ndarray]:
    """Scale (pixels per hand unit) and the affine map from hand units to pixels: the hand's
    size, rotation and position on the film."""
    rng = hand.rng
    # hand length (wrist to fingertip ~0.95 units) fills most of the height
    px = h * rng.uniform(0.52, 0.62) * (0.80 + 0.20 * hand.mat) * (1.0 if male else 0.97)
    rot = math.radians(rng.normal(0, 9))
    cx, cy = w * rng.uniform(0.42, 0.58), h * rng.uniform(0.66, 0.76)
    c, s = math.cos(rot) * px, math.sin(rot) * px
    return px, np.array([[c, -s, cx], [s, c, cy]])


def _draw_forearm(cv: _Canvas, hand: _Hand) -> None:
    """Soft tissue of forearm and palm; the radius (thumb side) and the ulna with epiphyses."""
    cv.poly("soft", np.array([[-0.20, 0.02], [0.20, 0.02], [0.19, 0.9], [-0.19, 0.9]]), 0.30)
    cv.ellipse("soft", (0.0, -0.08), 0.22 * (1.08 - 0.08 * hand.mat) * hand.slender, 0.2, 0, 0.32)
    for kind, x, wmul in (("radius", -0.075, 1.9), ("ulna", 0.085, 1.3)):
        top = np.array([x, 0.11])
        _bone(cv, top, (0.0, 1.0), 0.9, hand.bw * wmul, hand.val(), head=1.25)
        _epiphysis(cv, top, (0, 1), hand.bw * wmul * 1.1, hand.sk, kind, hand.val(), side=-1)


def _draw_carpals(cv: _Canvas, hand: _Hand) -> None:
    """Carpal ossification centres: appear in their order, grow towards their adult size."""
    rng, sk = hand.rng, hand.sk
    for _, onset, r, x, y in CARPALS:
        grown = _ramp(sk, onset, onset + 100) ** 0.7
        if sk >= onset:
            rr = r * (0.25 + 0.75 * grown) * hand.slender
            cv.ellipse(
                "bone",
                (x * (0.9 + 0.1 * hand.mat), y),
                rr,
                rr * rng.uniform(0.8, 1.0),
                rng.uniform(0, 180),
                hand.val() * (0.8 + 0.2 * grown),
            )


def _draw_ray(cv: _Canvas, hand: _Hand, i: int, spread: float) -> None:
    """Ray ``i`` (0 = thumb): finger soft tissue, metacarpal, phalanges, epiphyses where they
    really are."""
    base, angle, mc_len, phal = RAYS[i]
    sk, mat, lengths = hand.sk, hand.mat, hand.lengths
    a = math.radians(angle * spread + hand.rng.normal(0, 2))
    d = np.array([math.sin(a), -math.cos(a)])
    p = np.array(base) * [1.0, 0.85 + 0.15 * mat]
    fw = hand.bw * (1.15 if i == 0 else 1.0) * (0.9 if i == 4 else 1.0)
    tip = p + d * (mc_len + sum(phal) * lengths + 0.05)
    n = np.array([-d[1], d[0]])
    cv.poly(
        "soft",
        np.array([p + n * fw * 1.6, tip + n * fw * 1.3, tip - n * fw * 1.3, p - n * fw * 1.6]),
        0.30,
    )
    cv.ellipse("soft", tip, fw * 1.3, fw * 1.3, 0, 0.30)
    mc_start = p + d * 0.02
    mc_end = _bone(cv, mc_start, d, mc_len * (0.85 + 0.15 * mat), fw * 1.1, hand.val())
    if i == 0:  # the thumb metacarpal's epiphysis is proximal
        _epiphysis(cv, mc_start, d, fw * 1.1, sk, "metacarpal", hand.val(), side=-1)
    else:
        _epiphysis(cv, mc_end, d, fw * 1.1, sk, "metacarpal", hand.val(), side=+1)
    joint_gap = 0.035 - 0.012 * mat
    start = mc_end + d * (joint_gap + (0 if i == 0 else 0.03 * _ramp(sk, 20, 130)))
    kinds = ("proximal", "distal") if i == 0 else ("proximal", "middle", "distal")
    for k, (kind, L) in enumerate(zip(kinds, phal, strict=True)):
        width = fw * (1.0 - 0.12 * k)
        epi_room = (
            0.022
            * _ramp(sk, EPI_ONSET[kind], EPI_ONSET[kind] + 60)
            * (1 - _ramp(sk, FUSION[kind] - 30, FUSION[kind]))
        )
        s0 = start + d * epi_room
        head = 1.1 if kind != "distal" else 1.0
        end = _bone(cv, s0, d, L * lengths, width, hand.val(), head=head)
        _epiphysis(cv, s0, d, width, sk, kind, hand.val(), side=-1)
        start = end + d * joint_gap


def _expose(cv: _Canvas, px: float, rng: np.random.Generator) -> np.ndarray:
    """The film, float in [0, 1]: blurred soft tissue, lightly blurred bone, background
    gradient, an occasional border frame, exposure, contrast and noise."""
    h, w = cv.soft.shape
    soft = cv2.GaussianBlur(cv.soft, (0, 0), 0.012 * px)
    bone = cv2.GaussianBlur(cv.bone, (0, 0), max(0.6, 0.0025 * px))
    img = 0.06 + soft * rng.uniform(0.8, 1.1) + bone * rng.uniform(0.48, 0.62)
    yy = np.arange(h, dtype=np.float32)[:, None]  # broadcast, not a full grid
    xx = np.arange(w, dtype=np.float32)[None, :]
    g = rng.normal(0, 1, 2)
    img += np.float32(0.08 * rng.uniform(0, 1)) * (
        (xx / w - 0.5) * np.float32(g[0]) + (yy / h - 0.5) * np.float32(g[1])
    )
    if rng.uniform() < 0.2:  # border frame of a cassette or collimator
        t = int(rng.integers(4, 18))
        img[:t, :] = img[-t:, :] = img[:, :t] = img[:, -t:] = rng.uniform(0.6, 0.9)
    img = np.clip(img, 0, 1) ** np.float32(rng.uniform(0.75, 1.35))
    img = img * np.float32(rng.uniform(0.85, 1.15)) + np.float32(rng.normal(0, 0.03))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0.008, 0.03))
    return img


def _mark_side(out: np.ndarray, rng: np.random.Generator) -> None:
    """Most films carry a side marker letter (mostly L) near a top corner; drawn in place."""
    h, w = out.shape
    if rng.uniform() < 0.6:
        letter = "L" if rng.uniform() < 0.8 else "R"
        corner = (int(w * rng.uniform(0.05, 0.2)), int(h * rng.uniform(0.1, 0.25)))
        cv2.putText(
            out,
            letter,
            corner,
            cv2.FONT_HERSHEY_SIMPLEX,
            h / 500,
            int(rng.integers(200, 256)),
            max(1, h // 200),
            cv2.LINE_AA,
        )


def render_hand(
    age_months: float, male: bool, rng: np.random.Generator, size: tuple[int, int] | None = None
) -> np.ndarray:
    """One synthetic radiograph (uint8, H x W) of a hand of ``age_months`` and sex.

    ``size`` (height, width) defaults to a random portrait size of roughly 400-700 px. The parts
    draw from ``rng`` in a fixed order: the same generator state gives the same image.
    """
    hand = _Hand.of(age_months, male, rng)
    h, w = size if size else (int(rng.integers(520, 700)), int(rng.integers(400, 560)))
    px, m = _placement(h, w, hand, male)
    cv = _Canvas(h, w, m)
    _draw_forearm(cv, hand)
    _draw_carpals(cv, hand)
    spread = rng.uniform(0.85, 1.25)
    for i in range(len(RAYS)):
        _draw_ray(cv, hand, i, spread)
    out = np.clip(_expose(cv, px, rng) * 255, 0, 255).astype(np.uint8)
    _mark_side(out, rng)
    return out


def sample_labels(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ages (months, RSNA-like: mean ~127, sd ~41, 1-228) and sexes (54% male in every table).

    The male count is fixed at round(54% of n), shuffled, so that no seed draws a lopsided table.
    """
    ages = np.clip(rng.normal(AGE_MEAN, AGE_SD, n), AGE_MIN, AGE_MAX).round()
    male = rng.permutation(n) < round(MALE_FRACTION * n)
    return ages, male


def _render_one(args) -> None:
    path, age, male, seed, index = args
    rng = np.random.default_rng([seed, index, VERSION])
    cv2.imwrite(str(path), render_hand(age, male, rng))


def generate(
    out_dir: Path | str,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int = 0,
    workers: int | None = None,
    first_id: int = 1,
) -> Path:
    """Write a synthetic data set in the RSNA Kaggle layout; atomic (temp folder, then rename).

    Tables: ``boneage-training-dataset.csv`` (``id,boneage,male``),
    ``boneage-validation-dataset.csv`` (``Image ID,male,Bone Age (months)``),
    ``boneage-test-dataset.csv`` (``Case ID,Sex,Ground truth bone age (months)``, Sex M/F), each
    with its PNG folder, and ``phantom.json`` (seed, counts, version).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        jobs = _write_tables(tmp, (n_train, n_val, n_test), seed, first_id)
        _render_all(jobs, workers)
        (tmp / "phantom.json").write_text(
            json.dumps(
                {
                    "generator": "nblib.data.phantom",
                    "version": VERSION,
                    "seed": seed,
                    "counts": {"train": n_train, "validation": n_val, "test": n_test},
                },
                indent=1,
            )
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


_STEMS = ("boneage-training-dataset", "boneage-validation-dataset", "boneage-test-dataset")


def _write_tables(tmp: Path, counts: tuple[int, int, int], seed: int, first_id: int) -> list:
    """Draw every split's labels (one generator, in split order, so a seed always gives the same
    set), write each table in its own RSNA dialect, and return the images to render."""
    rng = np.random.default_rng([seed, VERSION])
    jobs, next_id = [], first_id
    for stem, n in zip(_STEMS, counts, strict=True):
        if n == 0:  # a table with no rows would not be a valid RSNA table
            continue
        ages, male = sample_labels(n, rng)
        if stem == "boneage-test-dataset":  # continuous ground truth, as RSNA's test set
            ages = np.clip(ages + rng.uniform(-0.5, 0.5, n), AGE_MIN, AGE_MAX).round(2)
        ids = np.arange(next_id, next_id + n)
        next_id += n
        folder = tmp / stem
        folder.mkdir()
        _table(stem, ids, ages, male).to_csv(tmp / f"{stem}.csv", index=False)
        jobs += [
            (folder / f"{i}.png", float(a), bool(m), seed, int(i))
            for i, a, m in zip(ids, ages, male, strict=True)
        ]
    return jobs


def _table(stem: str, ids, ages, male) -> pd.DataFrame:
    """One split's label table in the header dialect RSNA published that split in."""
    if stem == "boneage-training-dataset":
        return pd.DataFrame({"id": ids, "boneage": ages.astype(int), "male": male})
    if stem == "boneage-validation-dataset":
        return pd.DataFrame(
            {
                "Image ID": ids,
                "male": np.where(male, "TRUE", "FALSE"),
                "Bone Age (months)": ages.astype(int),
            }
        )
    return pd.DataFrame(
        {
            "Case ID": ids,
            "Sex": np.where(male, "M", "F"),
            "Ground truth bone age (months)": ages,
        }
    )


def _render_all(jobs: list, workers: int | None) -> None:
    """Draw every image, in processes when there are enough of them, with a progress bar."""
    total = len(jobs)
    workers = workers or min(4, max(1, (os.cpu_count() or 1)))
    if workers > 1 and total >= 64:
        with ProcessPoolExecutor(workers) as ex, progress.bar(total, "synthetic hands") as bar:
            for _ in ex.map(_render_one, jobs, chunksize=16):
                bar.update()
    else:
        for job in jobs:
            _render_one(job)
