"""Preprocessing shared by prediction and the models trained beyond the papers."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from nblib.data import phantom, pipeline, preprocess


def _gradient_image() -> np.ndarray:
    """A radiograph-like picture whose left half is underexposed."""
    img = phantom.render_hand(120.0, False, np.random.default_rng(4), size=(260, 200))
    img[:, :100] //= 3
    return img


def test_contrast_methods():
    img = _gradient_image()
    assert np.array_equal(preprocess.contrast(img, "none"), img)
    clahe = preprocess.contrast(img, "clahe")
    assert clahe.dtype == np.uint8 and clahe.shape == img.shape
    assert clahe[:, :100].std() > 1.5 * img[:, :100].std()  # the dark half gains contrast
    std = preprocess.contrast(img, "standardize")
    z = (img - img.mean()) / img.std()
    expected = np.clip(np.round((z + 3) * 255 / 6), 0, 255)
    assert np.abs(std.astype(float) - expected).max() <= 1
    assert np.array_equal(
        preprocess.contrast(np.full((8, 8), 9, np.uint8), "standardize"), np.full((8, 8), 128)
    )
    with pytest.raises(ValueError, match="contrast must be one of none, clahe, standardize"):
        preprocess.contrast(img, "equalize")
    with pytest.raises(ValueError, match="expected a uint8 gray image"):
        preprocess.contrast(img.astype(np.float32), "none")


def test_default_preprocessing_is_the_series_pipeline(tmp_path):
    img = phantom.render_hand(90.0, True, np.random.default_rng(2), size=(330, 250))
    path = tmp_path / "hand.png"
    cv2.imwrite(str(path), img)
    gray, _ = pipeline.read_gray(path)
    x, box = preprocess.Preprocessing(80).apply(gray)
    assert x.shape == (80, 80, 1) and x.dtype == np.uint8
    assert np.array_equal(x[..., 0], pipeline.decode(path, 80))
    assert tuple(box) == (0, 0, 250, 330) and box.found


def test_hand_crop_and_contrast_are_applied_in_order():
    img = phantom.render_hand(150.0, True, np.random.default_rng(6), size=(300, 240))
    canvas = np.full((600, 600), 12, np.uint8)
    canvas[150:450, 200:440] = img
    prep = preprocess.Preprocessing(64, crop="hand", contrast="standardize")
    x, box = prep.apply(canvas)
    x0, y0, x1, y1 = box
    assert box.found and x1 - x0 < 500 and y1 - y0 < 500
    crop = preprocess.contrast(canvas[y0:y1, x0:x1], "standardize")
    assert np.array_equal(x[..., 0], pipeline.resize(crop, 64))
    again, _ = prep.apply(canvas, box)  # a box computed once is reused
    assert np.array_equal(again, x)


def test_preprocessing_json_round_trip_and_sidecar(tmp_path):
    prep = preprocess.Preprocessing(128, crop="hand", contrast="clahe")
    assert preprocess.Preprocessing.from_dict(json.loads(json.dumps(prep.to_dict()))) == prep
    model = tmp_path / "model.keras"
    assert preprocess.load_sidecar(model) is None
    extra = {"inputs": ["image", "sex"], "tta": ["identity", "flip_lr"], "note": "notebook 07"}
    path = preprocess.save_sidecar(model, prep, extra)
    assert path == tmp_path / "model.preprocess.json"
    back, back_extra = preprocess.load_sidecar(model)
    assert back == prep and back_extra == extra


@pytest.mark.parametrize(
    "doc, message",
    [
        ("{not json", "is not valid JSON"),
        ({"size": 64}, "has no 'preprocessing' object"),
        ({"preprocessing": {"size": 64, "crop": "wrist"}}, "crop must be one of none, hand"),
        ({"preprocessing": {"crop": "hand"}}, "'size' is missing"),
        ({"preprocessing": {"size": 64, "zoom": 2}}, r"unknown key\(s\) zoom"),
        ({"preprocessing": {"size": 64}, "tta": ["rotate"]}, "'tta' must be a non-empty list"),
        ({"preprocessing": {"size": 64}, "inputs": ["sex", "image"]}, "must start with 'image'"),
    ],
)
def test_a_bad_sidecar_is_refused_by_name(tmp_path, doc, message):
    model = tmp_path / "best.keras"
    text = doc if isinstance(doc, str) else json.dumps(doc)
    (tmp_path / "best.preprocess.json").write_text(text)
    with pytest.raises(ValueError, match=message) as e:
        preprocess.load_sidecar(model)
    assert "best.preprocess.json" in str(e.value)


def test_size_is_checked():
    with pytest.raises(ValueError, match="size must be a whole number"):
        preprocess.Preprocessing(64.0)
    with pytest.raises(ValueError, match="at least 8 px"):
        preprocess.Preprocessing(4)


def test_tta_batch_flips_and_flips_back():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    batch = preprocess.tta_batch(img, preprocess.TTA)
    assert batch.shape == (4, 3, 4, 1)
    assert np.array_equal(batch[1], img[:, ::-1]) and np.array_equal(batch[2], img[::-1])
    assert np.array_equal(batch[3], img[::-1, ::-1])
    for i, v in enumerate(preprocess.TTA):
        assert np.array_equal(preprocess.tta_batch(batch[i], [v])[0], img)
    with pytest.raises(ValueError, match="unknown test-time variant"):
        preprocess.tta_batch(img, ["rot90"])


def test_otsu_thresholds():
    rng = np.random.default_rng(0)
    three = np.concatenate([rng.normal(m, 8, n) for m, n in ((40, 5000), (120, 3000), (200, 1000))])
    three = three.clip(0, 255).astype(np.uint8)
    t2 = preprocess.otsu_thresholds(three, 2)[0]
    assert t2 == int(cv2.threshold(three.reshape(-1, 1), 0, 255, cv2.THRESH_OTSU)[0])
    lo, hi = preprocess.otsu_thresholds(three, 3)
    assert 60 < lo < 100 < hi < 180


def test_hand_box_says_when_there_is_no_hand():
    flat = np.full((200, 160), 90, np.uint8)
    marker = np.random.default_rng(0).integers(15, 20, (300, 240)).astype(np.uint8)
    cv2.putText(marker, "L", (30, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 250, 4)
    for img in (flat, marker):
        box = preprocess.hand_box(img)
        assert not box.found and box.note
        assert tuple(box) == (0, 0, img.shape[1], img.shape[0])


@pytest.mark.real
def test_hand_box_on_real_radiographs(shared_dir):
    folder = shared_dir / "data" / "rsna-sample" / "boneage-training-dataset"
    for path in sorted(folder.glob("*.png"))[:25]:
        gray, _ = pipeline.read_gray(path)
        box = preprocess.hand_box(gray)
        w, h = box.size
        assert box.found, (path.name, box.note)
        assert w * h >= 0.25 * gray.size, path.name  # the hand fills most of an RSNA radiograph
