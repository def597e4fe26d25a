"""The real RSNA label tables and the 1,000-image sample in ../shared (skipped without them)."""

from __future__ import annotations

import csv

import pytest

from nblib.data import loading, rsna
from nblib.experiments import eda

pytestmark = pytest.mark.real


def _raw(path, id_col, age_col, sex_col, male_values):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ages = [float(r[age_col]) for r in rows]
    return len(rows), sum(r[sex_col] in male_values for r in rows), min(ages), max(ages), sum(ages)


@pytest.mark.parametrize(
    "name, split, dialect",
    [
        ("boneage-training-dataset.csv", "train", ("id", "boneage", "male", {"True"})),
        (
            "boneage-validation-dataset.csv",
            "validation",
            ("Image ID", "Bone Age (months)", "male", {"TRUE"}),
        ),
        (
            "boneage-test-dataset.csv",
            "test",
            ("Case ID", "Ground truth bone age (months)", "Sex", {"M"}),
        ),
    ],
)
def test_official_label_tables(shared_dir, name, split, dialect):
    path = shared_dir / "data" / "rsna-labels" / name
    table = rsna.load_labels(path)
    n, males, lo, hi, total = _raw(path, *dialect)  # computed from the raw CSV, independently
    assert len(table) == n == {"train": 12611, "validation": 1425, "test": 200}[split]
    assert int(table["male"].sum()) == males
    assert table["boneage"].min() == lo and table["boneage"].max() == hi
    assert table["boneage"].sum() == pytest.approx(total)
    assert (table["split"] == split).all()


def test_label_tables_summary(shared_dir):
    labels = eda.label_tables(shared_dir / "data" / "rsna-labels")
    s = eda.summary(labels)
    assert s["n"].sum() == 14236 and set(s["split"]) == {"train", "validation", "test"}


def test_sample_loads_with_every_path(shared_dir):
    df = loading.load_dataset(shared_dir / "data" / "rsna-sample")
    assert len(df) == 1000
    assert all(__import__("os").path.isfile(p) for p in df["path"])
    assert df["boneage"].between(1, 228).all()
