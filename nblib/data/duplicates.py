"""The same radiograph under two ids: found from the data checks' decodes, refused across splits.

An image in the training set and again in the validation or test set lets a model be scored on
what it learnt by heart, so the scores say nothing. Two ids are the same radiograph when their
decodes are identical, or near-identical: a re-encoded, rescaled, re-windowed or slightly noisy
copy. Each image gets two fingerprints from the decode the checks already hold (no second
decode): a digest of its pixels, and a perceptual hash, the signs of the 255 lowest-frequency
DCT coefficients of a 64 x 64 thumbnail (DC left out) against their median. Near-identical means
that at most :data:`NEAR_BITS` of those 255 bits differ.

The threshold lies between what copies and distinct images measure. On RSNA's 12,611 training
and test radiographs no two distinct ones come closer than 24 bits, and on 1,332 synthetic
phantoms none closer than 18. Copies of 400 radiographs, each brightened, gamma-corrected, JPEG
re-encoded, rescaled, blurred or with noise added (sigma 3 gray levels), differ by at most 10
bits in 95 of 100 (the worst gamma and noise copies by 14-16). Twelve bits keeps half the
distance to the closest distinct images as a margin, so that a larger or other data set is not
refused for two hands that merely look alike. The hash is a median split of 255 values, so
distances are even. A cropped, shifted or mirrored copy is not caught: its hash moves as much
as a different hand's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

HASH_SIDE = 64  # the thumbnail the perceptual hash is computed on


HASH_FREQS = 16  # the 16 x 16 lowest frequencies: 255 bits without the DC term


NEAR_BITS = 12  # at most this many of the 255 bits differ: near-identical (see the module's text)


PAIR_COLUMNS = ["id_a", "id_b", "kind", "distance", "side"]


SPLIT_RANK = {"train": 0, "validation": 1, "test": 2}  # the member of a lower rank is dropped


def digests(images: np.ndarray) -> list[str]:
    """A digest of each decode's pixels: equal digests, identical images."""
    return [hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() for img in images]


def _dct_matrix(n: int, k: int) -> np.ndarray:
    """The first ``k`` rows of the orthonormal DCT-II of length ``n`` (float32)."""
    rows = np.arange(k)[:, None]
    cols = np.arange(n)[None, :]
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * cols + 1) * rows / (2 * n))
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


def _thumbnails(images: np.ndarray) -> np.ndarray:
    """``images`` (N x S x S uint8) area-resized to N x 64 x 64 float32."""
    interp = cv2.INTER_AREA if images.shape[1] > HASH_SIDE else cv2.INTER_LINEAR
    size = (HASH_SIDE, HASH_SIDE)
    small = [cv2.resize(img, size, interpolation=interp) for img in images]
    return np.stack(small).astype(np.float32)


def perceptual_hashes(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """The 255-bit perceptual hash of each decode (N x 255 bool), in chunks to bound memory."""
    dct = _dct_matrix(HASH_SIDE, HASH_FREQS)
    out = np.empty((len(images), HASH_FREQS * HASH_FREQS - 1), bool)
    for start in range(0, len(images), chunk):
        coeffs = dct @ _thumbnails(images[start : start + chunk]) @ dct.T
        flat = coeffs.reshape(len(coeffs), -1)[:, 1:]
        out[start : start + chunk] = flat > np.median(flat, axis=1, keepdims=True)
    return out


def near_pairs(
    bits: np.ndarray, max_distance: int = NEAR_BITS, block: int = 1024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs ``(i, j, distance)``, ``i < j``, of hashes at most ``max_distance`` bits apart.

    Every pair is compared: with k bits written as +-1 the Hamming distance is ``(k - dot) / 2``,
    so a block of rows against the rows after it is one matrix product (exact in float32). That
    is n^2/2 comparisons done by BLAS, and it misses no pair, which bucketing by parts of the
    hash could.
    """
    signs = np.where(bits, 1.0, -1.0).astype(np.float32)
    n, k = signs.shape
    found_i, found_j, found_d = [], [], []
    for start in range(0, n, block):
        dist = (k - signs[start : start + block] @ signs[start:].T) / 2
        i, j = np.nonzero(dist <= max_distance)
        later = j > i  # column j is row start + j: only pairs after the diagonal
        found_i.append(start + i[later])
        found_j.append(start + j[later])
        found_d.append(dist[i[later], j[later]].astype(int))
    if not found_i:
        return np.empty(0, int), np.empty(0, int), np.empty(0, int)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)


def find_pairs(ids: Sequence[str], images: np.ndarray) -> pd.DataFrame:
    """Every pair of ids whose decodes are identical or near-identical: ``[id_a, id_b, kind,
    distance, side]``, ``kind`` "identical" or "near-identical", ``distance`` the hash bits that
    differ, ``side`` the decodes' size. ``images`` are the checks' decodes of ``ids``, in order,
    all at one size."""
    if len(ids) < 2:
        return pd.DataFrame(columns=PAIR_COLUMNS)
    exact = digests(images)
    i, j, d = near_pairs(perceptual_hashes(images))
    rows = {(a, b): ("near-identical", int(dist)) for a, b, dist in zip(i, j, d, strict=True)}
    groups: dict[str, list[int]] = {}
    for n, digest in enumerate(exact):
        groups.setdefault(digest, []).append(n)
    for members in groups.values():  # identical ones, whatever their hashes say
        for x, a in enumerate(members):
            rows.update({(a, b): ("identical", 0) for b in members[x + 1 :]})
    ids, side = list(ids), int(images.shape[1])
    out = [
        {"id_a": ids[a], "id_b": ids[b], "kind": kind, "distance": dist, "side": side}
        for (a, b), (kind, dist) in sorted(rows.items())
    ]
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def describe(kind: str, distance: int, side: int) -> str:
    """How alike a pair is, in words."""
    if kind == "identical":
        return f"identical pixels at {side} px"
    bits = HASH_FREQS * HASH_FREQS - 1
    return f"near-identical: {distance} of {bits} perceptual-hash bits differ"


def _located(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` of ids both still in ``table``, with each one's split and path."""
    split: Mapping[str, str] = dict(zip(table["id"], table["split"], strict=True))
    path: Mapping[str, str] = dict(zip(table["id"], table["path"], strict=True))
    p = pairs[pairs["id_a"].isin(split.keys()) & pairs["id_b"].isin(split.keys())].copy()
    for end in ("a", "b"):
        p[f"split_{end}"] = p[f"id_{end}"].map(split)
        p[f"path_{end}"] = p[f"id_{end}"].map(path)
    return p


def across_splits(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The pairs whose two ids are in different splits of ``table``: ``[id, path, reason]``,
    one row per pair on the id of the lower split (train < validation < test), the one that
    ``drop_bad`` drops, so that the test set stays the benchmark it is."""
    p = _located(pairs, table)
    p = p[p["split_a"] != p["split_b"]]
    rows = []
    for r in p.itertuples(index=False):
        low, high = ("a", "b") if SPLIT_RANK[r.split_a] <= SPLIT_RANK[r.split_b] else ("b", "a")
        low_split, high_split = getattr(r, f"split_{low}"), getattr(r, f"split_{high}")
        rows.append(
            {
                "id": getattr(r, f"id_{low}"),
                "path": getattr(r, f"path_{low}"),
                "reason": (
                    f"the same radiograph as id {getattr(r, f'id_{high}')} of the {high_split} "
                    f"split ({describe(r.kind, r.distance, r.side)}; {getattr(r, f'path_{high}')})"
                    f": one image in {low_split} and {high_split} is {low_split}/{high_split} "
                    "leakage. Remove one of the two"
                ),
            }
        )
    return pd.DataFrame(rows, columns=["id", "path", "reason"])


def within_splits(pairs: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """The pairs whose two ids are in one split of ``table``, as warnings ``[id, path, reason]``,
    one per id that repeats an earlier one (a group of k copies gives k - 1 warnings): the same
    image counts twice, which leaks nothing but weighs it double."""
    p = _located(pairs, table)
    p = p[p["split_a"] == p["split_b"]]
    rows = []
    for rid, group in p.groupby("id_b", sort=False):
        first = group.iloc[0]
        others = ", ".join(f"id {a}" for a in group["id_a"])
        rows.append(
            {
                "id": rid,
                "path": first.path_b,
                "reason": f"the same radiograph as {others} "
                f"({describe(first.kind, first.distance, first.side)}); all in the "
                f"{first.split_a} split, kept together there",
            }
        )
    return pd.DataFrame(rows, columns=["id", "path", "reason"])
