"""The papers' data: the ``full`` profile, the official protocol on a training and a test table,
and leakage (one radiograph under two ids, a test id in a training table) refused.

Fast: small made-up tables and images; the real ``rsna-full`` folder is read (marked ``real``)
but never trained on.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.data import checks, duplicates, loading, phantom, pipeline, rsna, splitting

FULL = config.ROOT.parent / "shared" / "data" / "rsna-full"


def _picture(seed: int, shape=(96, 80)) -> np.ndarray:
    """A radiograph-like 8-bit picture, another for each ``seed``: a dark noisy background and a
    bright block whose place and size vary."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 40, shape).astype(np.uint8)
    h, w = shape
    top, left = rng.integers(5, h // 3), rng.integers(5, w // 3)
    img[top : top + h // 2, left : left + w // 2] = rng.integers(120, 250, (h // 2, w // 2))
    return img


def _tables(tmp_path, train_ids, test_ids, images=True, picture=_picture):
    """A Kaggle-layout folder: a training table and the official test table (no validation
    table, as rsna-full), each with its image folder unless ``images`` is False."""
    ages = np.random.default_rng(0)
    for stem, ids in (("boneage-training-dataset", train_ids), ("boneage-test-dataset", test_ids)):
        folder = tmp_path / stem
        folder.mkdir(parents=True, exist_ok=True)
        if images:
            for rid in ids:
                assert cv2.imwrite(str(folder / f"{rid}.png"), picture(int(rid)))
        months = ages.uniform(12, 220, len(ids)).round(2)
        if stem == "boneage-training-dataset":
            table = {"id": ids, "boneage": months.round(), "male": [i % 2 == 0 for i in ids]}
        else:
            table = {
                "Case ID": ids,
                "Sex": ["M" if i % 2 == 0 else "F" for i in ids],
                "Ground truth bone age (months)": months,
            }
        pd.DataFrame(table).to_csv(tmp_path / f"{stem}.csv", index=False)
    return tmp_path


def _smoke(folder, out, **kw):
    return config.make(
        "03_resnet50", "smoke", data_dir=str(folder), output_dir=str(out), max_samples=0, **kw
    )


# --- the full profile ----------------------------------------------------------------------


@pytest.mark.parametrize("stem", config.notebook_stems())
def test_full_profile_builds_every_notebook_without_the_data(stem, monkeypatch):
    monkeypatch.setattr(loading, "load_dataset", lambda *a, **k: pytest.fail("data was read"))
    cfg = config.make(stem, "full")
    assert cfg.profile == "full" and cfg.data_dir == FULL.resolve()
    assert cfg.image_size == 128 and cfg.width == 0.25
    # every image, but the autoencoder's pretraining: a seeded 4,000 of its split (CPU time)
    assert cfg.max_samples == (4000 if stem == "05_autoencoder_pretraining" else 0)
    protocol = {"05_autoencoder_pretraining": "random", "06_ae_bonet": "random"}
    assert cfg.split == protocol.get(stem, "official")


def test_full_profile_picks_the_best_validation_epoch():
    """1,260 and 2,286 validation images choose an epoch; the sample's reason to average (the
    noise of 100) does not hold, and nothing is chosen on the test-200."""
    for stem in config.notebook_stems():
        assert config.make(stem, "full").average_epochs == 0


# --- the official protocol on a training and a test table ----------------------------------


def test_official_share_splits_validation_off_a_training_table():
    """rsna-full's shape: RSNA's 12,411 training ids and the test-200, labels only."""
    train = pd.DataFrame({"id": [str(i) for i in range(12411)], "split": "train"})
    test = pd.DataFrame({"id": [f"t{i}" for i in range(200)], "split": "test"})
    df = pd.concat([train, test], ignore_index=True).assign(path="", boneage=100.0, male=True)
    a = splitting.assign_split(df, "official", 42)
    counts = a["split"].value_counts().to_dict()
    assert counts == {"train": 11151, "validation": 1260, "test": 200}
    assert round(12411 * 1425 / (12611 + 1425)) == 1260  # RSNA's validation share of training
    assert set(a.loc[a["split"] == "test", "id"]) == set(test["id"])  # the test table as it is
    again, other = (
        splitting.assign_split(df, "official", 42),
        splitting.assign_split(df, "official", 7),
    )
    assert a["split"].tolist() == again["split"].tolist() != other["split"].tolist()
    assert "no validation table, so 1260 of the 12411 training rows" in a.attrs["split_note"]


def test_official_protocol_on_tiny_training_and_test_tables(tmp_path):
    folder = phantom.generate(tmp_path / "data", 40, 0, 10, seed=3, workers=1)
    cfg = _smoke(folder, tmp_path / "out")
    split = loading.split_for(cfg)
    loading.save_split(cfg, split)
    tables = loading.load_dataset(folder, check_images=False)
    test_ids = set(tables.loc[tables["split"] == "test", "id"])
    parts = split.parts
    assert {s: len(p) for s, p in parts.items()} == {"train": 34, "validation": 6, "test": 10}
    assert set(parts["test"]["id"]) == test_ids  # the test table, untouched
    assert not set(parts["validation"]["id"]) & test_ids
    note = splitting.split_file(cfg).with_suffix(".txt").read_text()
    assert "no validation table, so 6 of the 40 training rows" in note


@pytest.mark.real
def test_rsna_full_splits_without_a_decode():
    if not FULL.is_dir():
        pytest.skip("../shared/data/rsna-full is not present")
    before = pipeline.CACHE.decodes
    df = loading.load_dataset(FULL, check_images=False)
    counts = splitting.assign_split(df, "official", 42)["split"].value_counts().to_dict()
    assert counts == {"train": 11151, "validation": 1260, "test": 200}
    counts = splitting.assign_split(df, "random", 42)["split"].value_counts().to_dict()
    assert counts == {"train": 9925, "validation": 2286, "test": 200}
    assert pipeline.CACHE.decodes == before


# --- one radiograph under two ids ------------------------------------------------------------


def test_identical_image_under_two_ids_is_refused_across_splits(tmp_path):
    copy = lambda seed: _picture(105 if seed == 7 else seed)  # noqa: E731 - train 7 is test 105
    folder = _tables(tmp_path, list(range(1, 21)), list(range(101, 111)), picture=copy)
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    (row,) = exc.value.problems.to_dict("records")
    assert row["id"] == "7" and "id 105 of the test split" in row["reason"]
    assert "identical pixels" in row["reason"] and "train/test leakage" in row["reason"]
    kept = loading.load_dataset(folder, drop_bad=True)  # the training copy goes, the test stays
    assert "7" not in set(kept["id"]) and "105" in set(kept["id"])
    assert [r["id"] for r in kept.attrs["dropped"]] == ["7"]


def test_near_identical_copy_is_found(tmp_path):
    def copy(seed):
        if seed != 7:
            return _picture(seed)
        noisy = _picture(105) * 0.9 + 12 + np.random.default_rng(1).normal(0, 2, (96, 80))
        return np.clip(noisy, 0, 255).astype(np.uint8)  # re-windowed, with noise

    folder = _tables(tmp_path, list(range(1, 21)), list(range(101, 111)), picture=copy)
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder, image_size=64)
    (row,) = exc.value.problems.to_dict("records")
    assert row["id"] == "7" and "id 105" in row["reason"] and "near-identical" in row["reason"]


def test_duplicates_within_training_are_warned_and_kept_in_one_split(tmp_path):
    def copy(seed):  # 12 and 30 are one picture, and 5, 17 and 40 another
        return _picture({30: 12, 17: 5, 40: 5}.get(seed, seed))

    folder = _tables(tmp_path, list(range(1, 61)), list(range(101, 111)), picture=copy)
    df = loading.load_dataset(folder)
    warned = {w["id"]: w["reason"] for w in df.attrs["warnings"]}
    assert set(warned) == {"30", "17", "40"}
    assert "same radiograph as id 12" in warned["30"] and "id 5, id 17" in warned["40"]
    for seed in range(8):  # whichever twin the permutation puts first, the other follows it
        cfg = _smoke(folder, tmp_path / f"out{seed}", seed=seed)
        split = loading.split_for(cfg)
        where = dict(zip(split.table["id"], split.table["split"], strict=True))
        assert where["12"] == where["30"] and where["5"] == where["17"] == where["40"]
    loading.save_split(cfg, split)
    listed = pd.read_csv(cfg.run_dir / "data_warnings.csv", dtype={"id": str})
    assert set(listed["id"]) == {"30", "17", "40"}


def test_a_split_list_that_parts_twins_is_refused(tmp_path):
    copy = lambda seed: _picture(12 if seed == 30 else seed)  # noqa: E731
    folder = _tables(tmp_path, list(range(1, 61)), list(range(101, 111)), picture=copy)
    cfg = _smoke(folder, tmp_path / "out")
    loading.save_split(cfg, loading.split_for(cfg))
    path = splitting.split_file(cfg)
    saved = pd.read_csv(path, dtype=str)
    twin = saved.loc[saved["id"] == "12", "split"].item()
    saved.loc[saved["id"] == "30", "split"] = "validation" if twin == "train" else "train"
    saved.to_csv(path, index=False)
    with pytest.raises(rsna.DataError) as exc:
        loading.split_for(cfg)
    msg = str(exc.value)
    assert "split list" in msg and "id 12" in msg and "id 30" in msg and "leakage" in msg


def test_near_pairs_miss_no_pair_a_brute_force_finds():
    rng = np.random.default_rng(0)
    bits = rng.random((300, 255)) > 0.5
    for a, b, flips in ((3, 250, 0), (10, 11, 4), (40, 200, 6), (7, 8, 9)):
        bits[b] = bits[a]
        bits[b, rng.choice(255, flips, replace=False)] ^= True
    i, j, d = duplicates.near_pairs(bits, max_distance=12, block=64)
    found = {(int(x), int(y), int(z)) for x, y, z in zip(i, j, d, strict=True)}
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    rows, cols = np.nonzero(dist <= 12)
    brute = {(x, y, int(dist[x, y])) for x, y in zip(rows, cols, strict=True) if x < y}
    assert found == brute and {(3, 250, 0), (10, 11, 4), (40, 200, 6)} <= found


# --- an id in two tables ---------------------------------------------------------------------


def test_test_id_in_the_training_table_is_refused_before_any_decode(tmp_path, monkeypatch):
    folder = _tables(tmp_path, [*range(1, 21), 104], list(range(101, 111)))
    monkeypatch.setattr(checks, "inspect", lambda *a, **k: pytest.fail("images were decoded"))
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    (row,) = exc.value.problems.to_dict("records")
    assert row["id"] == "104" and "boneage-training-dataset" in row["path"]
    assert "in the train table and also in the test table" in row["reason"]
    assert "train/test leakage" in row["reason"]
    monkeypatch.undo()
    kept = loading.load_dataset(folder, drop_bad=True)  # the test row stays, the training one goes
    rows = kept[kept["id"] == "104"]
    assert rows["split"].tolist() == ["test"] and len(kept) == 30
