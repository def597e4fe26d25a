"""Label tables in RSNA's three dialects, checks that name every bad row or file, splits."""

from __future__ import annotations

import shutil
import zlib

import cv2
import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.data import checks, loading, phantom, rsna, splitting


def _png(path, shape=(40, 36), dtype=np.uint8):
    """Random pixels, seeded by the file's name: each image differs from the others (the same
    picture under two ids is a duplicate, which the checks refuse across splits)."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    img = (rng.random(shape) * (255 if dtype == np.uint8 else 65535)).astype(dtype)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def folder(tmp_path):
    """A Kaggle-layout training table of five good rows."""
    images = tmp_path / "boneage-training-dataset"
    images.mkdir()
    for i in range(1, 6):
        _png(images / f"{i}.png")
    pd.DataFrame(
        {
            "id": range(1, 6),
            "boneage": [12, 50, 100, 150, 200],
            "male": [True, False, True, False, True],
        }
    ).to_csv(tmp_path / "boneage-training-dataset.csv", index=False)
    return tmp_path


def test_good_folder_loads(folder):
    df = loading.load_dataset(folder)
    assert list(df.columns) == rsna.COLUMNS
    assert df["id"].tolist() == ["1", "2", "3", "4", "5"]
    assert df["male"].tolist() == [True, False, True, False, True]
    assert (df["split"] == "train").all() and df["boneage"].dtype == float


@pytest.mark.parametrize(
    "header, rows, male",
    [
        ("id,boneage,male", ["7,120,True", "8,60,False"], [True, False]),
        ("Image ID,male,Bone Age (months)", ["7,TRUE,120", "8,FALSE,60"], [True, False]),
        ("Case ID,Sex,Ground truth bone age (months)", ["7,M,120.5", "8,F,60.25"], [True, False]),
    ],
)
def test_three_dialects(tmp_path, header, rows, male):
    csv = tmp_path / "labels.csv"
    csv.write_text(header + "\n" + "\n".join(rows) + "\n")
    table = rsna.load_labels(csv)
    assert list(table.columns) == rsna.COLUMNS and table.attrs["dropped"] == []
    assert table["id"].tolist() == ["7", "8"] and table["male"].tolist() == male
    assert table["boneage"].iloc[0] in (120.0, 120.5)


def _error(folder) -> str:
    with pytest.raises(ValueError) as exc:
        loading.load_dataset(folder)
    return str(exc.value)


def test_load_labels_names_bad_rows_or_drops_them(tmp_path):
    csv = tmp_path / "labels.csv"
    csv.write_text("Case ID,Sex,Ground truth bone age (months)\n7,M,120.5\n8,X,60\n9,F,-3\n")
    with pytest.raises(rsna.DataError) as exc:
        rsna.load_labels(csv)
    msg = str(exc.value)
    assert "id 8" in msg and "unknown sex value 'X'" in msg and "id 9" in msg and "negative" in msg
    kept = rsna.load_labels(csv, drop_bad=True)
    assert kept["id"].tolist() == ["7"] and [r["id"] for r in kept.attrs["dropped"]] == ["8", "9"]


def test_unreadable_tables_are_all_named(folder):
    (folder / "boneage-validation-dataset.csv").write_text("Image ID,male,Bone Age (months)\n")
    (folder / "boneage-test-dataset.csv").write_text("case,sex,age\n1,M,3\n")
    msg = _error(folder)
    assert "2 label table(s)" in msg and "boneage-validation-dataset.csv" in msg
    assert "no rows" in msg and "boneage-test-dataset.csv" in msg and "unrecognised header" in msg


def test_missing_image(folder):
    (folder / "boneage-training-dataset" / "3.png").unlink()
    msg = _error(folder)
    assert "id 3" in msg and "missing" in msg and "3.png" in msg


def test_zero_byte_image(folder):
    (folder / "boneage-training-dataset" / "2.png").write_bytes(b"")
    msg = _error(folder)
    assert "id 2" in msg and "empty (0 bytes)" in msg


def test_truncated_png(folder):
    p = folder / "boneage-training-dataset" / "4.png"
    p.write_bytes(p.read_bytes()[:-30])
    msg = _error(folder)
    assert "id 4" in msg and "truncated" in msg


def test_non_image_with_png_name(folder):
    (folder / "boneage-training-dataset" / "5.png").write_text("id,boneage\n1,2\n")
    msg = _error(folder)
    assert "id 5" in msg and "not a PNG" in msg


def test_16bit_rgb_rgba_are_accepted(folder):
    d = folder / "boneage-training-dataset"
    _png(d / "1.png", dtype=np.uint16)
    _png(d / "2.png", shape=(40, 36, 3))
    _png(d / "3.png", shape=(40, 36, 4))
    assert len(loading.load_dataset(folder)) == 5


def test_very_large_image(folder, monkeypatch):
    monkeypatch.setattr(checks, "MAX_SIDE", 35)  # the 40 px images now count as too large
    msg = _error(folder)
    assert "too large" in msg and "id 1" in msg and "40" in msg


@pytest.mark.parametrize(
    "value, words",
    [
        ("", "age is missing"),
        ("nan", "NaN"),
        ("-4", "negative age"),
        ("ten", "'ten' is not a number"),
        ("412", "absurd age 412"),
    ],
)
def test_bad_ages(folder, value, words):
    csv = folder / "boneage-training-dataset.csv"
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    df.loc[1, "boneage"] = value
    df.to_csv(csv, index=False)
    msg = _error(folder)
    assert "id 2" in msg and words in msg and "line 3" in msg


def test_unknown_sex(folder):
    csv = folder / "boneage-training-dataset.csv"
    df = pd.read_csv(csv, dtype=str)
    df.loc[2, "male"] = "maybe"
    df.to_csv(csv, index=False)
    msg = _error(folder)
    assert "id 3" in msg and "unknown sex value 'maybe'" in msg


def test_duplicate_id(folder):
    csv = folder / "boneage-training-dataset.csv"
    df = pd.read_csv(csv, dtype=str)
    df.loc[4, "id"] = "1"
    df.to_csv(csv, index=False)
    msg = _error(folder)
    assert "duplicate id 1" in msg


def test_empty_table(folder):
    (folder / "boneage-training-dataset.csv").write_text("id,boneage,male\n")
    assert "no rows" in _error(folder)
    (folder / "boneage-training-dataset.csv").write_text("")
    assert "empty" in _error(folder)


def test_unrecognised_headers(folder):
    (folder / "boneage-training-dataset.csv").write_text("patient,age,gender\n1,12,M\n")
    msg = _error(folder)
    assert "unrecognised header" in msg and "Bone Age (months)" in msg and "Case ID" in msg


def test_every_problem_in_one_error_and_drop_bad(folder):
    (folder / "boneage-training-dataset" / "3.png").unlink()
    csv = folder / "boneage-training-dataset.csv"
    df = pd.read_csv(csv, dtype=str)
    df.loc[0, "boneage"] = "-1"
    df.to_csv(csv, index=False)
    with pytest.raises(rsna.DataError) as exc:
        loading.load_dataset(folder)
    assert len(exc.value.problems) == 2 and "id 1" in str(exc.value) and "id 3" in str(exc.value)
    kept = loading.load_dataset(folder, drop_bad=True)
    assert kept["id"].tolist() == ["2", "4", "5"]
    assert sorted(r["id"] for r in kept.attrs["dropped"]) == ["1", "3"]


def test_dropped_rows_are_recorded(folder, tmp_path):
    (folder / "boneage-training-dataset" / "3.png").unlink()
    for i in range(6, 30):
        _png(folder / "boneage-training-dataset" / f"{i}.png")
    df = pd.DataFrame(
        {"id": range(1, 30), "boneage": np.linspace(10, 200, 29).round(), "male": [True] * 29}
    )
    df.to_csv(folder / "boneage-training-dataset.csv", index=False)
    cfg = config.make(
        "03_resnet50",
        "smoke",
        data_dir=str(folder),
        output_dir=str(tmp_path / "out"),
        drop_bad=True,
        max_samples=0,
    )
    table = loading.load_for(cfg)
    assert "3" not in set(table["id"]) and len(table) == 28
    assert table.attrs["dropped"][0]["id"] == "3"
    assert (
        not cfg.run_dir.exists() and not splitting.split_file(cfg).exists()
    )  # loading writes no results
    written = loading.save_split(cfg, loading.split_for(cfg))
    assert written[0] == cfg.run_dir / "dropped_rows.csv" and written[-1] == splitting.split_file(
        cfg
    )
    dropped = pd.read_csv(cfg.run_dir / "dropped_rows.csv")
    assert dropped["id"].astype(str).tolist() == ["3"] and "missing" in dropped["reason"][0]


def test_nested_kaggle_layout(folder):
    flat = folder / "boneage-training-dataset"
    nested = flat / "boneage-training-dataset"
    nested.mkdir()
    for p in list(flat.glob("*.png")):
        shutil.move(p, nested / p.name)
    df = loading.load_dataset(folder)
    assert all("boneage-training-dataset/boneage-training-dataset" in p for p in df["path"])


@pytest.mark.parametrize("protocol", ["official", "random"])
def test_split_counts_and_determinism(protocol):
    n_train, n_val, n_test = splitting.split_counts(1000, protocol)
    assert n_train + n_val + n_test == 1000 and n_test == 150
    df = pd.DataFrame(
        {
            "id": [str(i) for i in range(1000)],
            "path": "",
            "boneage": 100.0,
            "male": True,
            "split": "train",
        }
    )
    a, b = splitting.assign_split(df, protocol, 3), splitting.assign_split(df, protocol, 3)
    c = splitting.assign_split(df, protocol, 4)
    assert a["split"].tolist() == b["split"].tolist() != c["split"].tolist()
    assert a["id"].is_unique and set(a["id"]) == set(df["id"])  # disjoint and complete
    assert a["split"].value_counts().to_dict() == {
        "train": n_train,
        "validation": n_val,
        "test": n_test,
    }


def test_paper2_counts_on_full_rsna():
    assert splitting.split_counts(12611, "random") == (10088, 2323, 200)


def test_saved_split_is_reused_and_checked(tiny_dataset, tmp_path):
    cfg = config.make(
        "06_ae_bonet", "smoke", data_dir=str(tiny_dataset), output_dir=str(tmp_path), max_samples=0
    )
    split = loading.split_for(cfg)
    first = split.rows
    list_and_note = [splitting.split_file(cfg), splitting.split_file(cfg).with_suffix(".txt")]
    assert loading.save_split(cfg, split) == list_and_note  # 'random' leaves the other tables out
    assert loading.save_split(cfg, split) == []  # kept once: the first notebook's list stands
    saved = pd.read_csv(splitting.split_file(cfg), dtype=str)
    assert len(saved) == len(split.table) and set(saved["id"]) == set(split.table["id"])
    saved.loc[saved["split"] == "train", "split"] = "test"  # edit the list: load_for must follow it
    saved.to_csv(splitting.split_file(cfg), index=False)
    again = loading.load_for(cfg)
    assert (again["split"] == "test").sum() > (first["split"] == "test").sum()
    saved.loc[0, "id"] = "99999"
    saved.to_csv(splitting.split_file(cfg), index=False)
    with pytest.raises(ValueError, match="does not match the data set") as exc:
        loading.load_for(cfg)
    assert "99999" in str(exc.value) and "splits/random.csv" in str(exc.value)
    assert "Delete" in str(exc.value) and "not listed" in str(exc.value)


def test_official_split_uses_the_tables(tiny_dataset, tmp_path):
    cfg = config.make(
        "03_resnet50", "smoke", data_dir=str(tiny_dataset), output_dir=str(tmp_path), max_samples=0
    )
    df = loading.load_for(cfg)
    assert df["split"].value_counts().to_dict() == {"train": 48, "validation": 12, "test": 12}


def test_max_samples_keeps_every_split(tiny_dataset, tmp_path):
    cfg = config.make(
        "03_resnet50", "smoke", data_dir=str(tiny_dataset), output_dir=str(tmp_path), max_samples=24
    )
    df = loading.load_for(cfg)
    assert len(df) == 24 and df["split"].value_counts().to_dict() == {
        "train": 16,
        "validation": 4,
        "test": 4,
    }
    again = loading.load_for(cfg)
    assert again["id"].tolist() == df["id"].tolist()
    split = loading.split_for(cfg)
    assert {s: len(p) for s, p in split.parts.items()} == {"train": 16, "validation": 4, "test": 4}
    assert split.parts["test"]["id"].tolist() == df.loc[df["split"] == "test", "id"].tolist()
    assert len(split.table) == 72  # the split list covers every image, not only those used


def test_random_protocol_sizes_on_small_sets():
    """Paper 2's shares, with a test floor of min(200, 15%) so a small set has a usable test set."""
    assert splitting.split_counts(1000, "random") == (666, 184, 150)
    assert splitting.split_counts(60, "official") == (45, 6, 9)


def test_missing_data_dir_is_named(tmp_path):
    cfg = config.make("03_resnet50", "smoke", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        loading.load_for(cfg)


def test_default_phantom_is_generated_once_when_two_ask_at_the_same_time(tmp_path, monkeypatch):
    """Two notebooks (or test workers) starting together on a fresh clone: one generates, the
    other waits for it and uses the same finished folder."""
    import threading
    import time

    monkeypatch.setattr(config, "DEFAULT_DATA_DIR", tmp_path / "synthetic")
    calls = []
    real = phantom.generate

    def slow_generate(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.5)  # long enough for the other thread to arrive while this one works
        return real(*args, **kwargs, workers=1)

    monkeypatch.setattr(phantom, "generate", slow_generate)
    cfg = config.make("01_eda", "smoke", data_dir=tmp_path / "synthetic", synthetic_count=12)
    assert cfg.is_synthetic_default
    found = []
    threads = [
        threading.Thread(target=lambda: found.append(loading.resolve_data_dir(cfg)))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(found) == 2 and found[0] == found[1]
    assert (found[0] / "phantom.json").is_file()
