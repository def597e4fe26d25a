"""The official test table as every model's benchmark: its rows whatever the protocol, and a
model of the random protocol scored on them beside its own test set."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from nblib.core import config, results, runfiles
from nblib.data import loading, test200
from nblib.experiments import paper2
from nblib.train import evaluation


def _constant_model(size: int, value: float) -> keras.Model:
    """A model that answers ``value`` months for any image: its metrics are known by hand."""
    x = keras.Input((size, size, 1), dtype="uint8")
    y = keras.layers.Lambda(lambda t: keras.ops.zeros_like(t[:, 0, 0, :1], "float32") + value)(x)
    return keras.Model(x, y)


def test_official_test_rows_are_the_test_table(tiny_dataset, tmp_path):
    rows = test200.official_test(tiny_dataset)
    assert len(rows) == 12 and set(rows["split"]) == {"test"}
    table = pd.read_csv(tiny_dataset / "boneage-test-dataset.csv", dtype={"Case ID": str})
    assert sorted(rows["id"]) == sorted(table["Case ID"])
    only_train = tmp_path / "only_train"
    only_train.mkdir()
    (only_train / "boneage-training-dataset").symlink_to(tiny_dataset / "boneage-training-dataset")
    (only_train / "boneage-training-dataset.csv").write_text(
        (tiny_dataset / "boneage-training-dataset.csv").read_text()
    )
    assert test200.official_test(only_train) is None


def test_a_model_is_scored_on_rows_outside_its_split(tiny_dataset):
    rows = test200.official_test(tiny_dataset)
    got = evaluation.score_rows(_constant_model(32, 100.0), rows, 32, 4, train_mean=120.0)
    truth = rows["boneage"].to_numpy(float)
    assert got["n"] == 12 and len(got["predictions"]) == 12
    assert got["test"]["mae"] == pytest.approx(np.mean(np.abs(truth - 100.0)), rel=1e-6)
    assert got["mean_predictor"]["mae"] == pytest.approx(np.mean(np.abs(truth - 120.0)))
    ci = got["intervals"]["mae"]
    assert ci["low"] <= got["test"]["mae"] <= ci["high"]


def test_random_protocol_models_carry_the_benchmark_and_official_ones_do_not(
    tiny_dataset, tmp_path
):
    model = _constant_model(32, 90.0)
    for split, expect in (("random", True), ("official", False)):
        cfg = config.make(
            "06_ae_bonet",
            "smoke",
            data_dir=str(tiny_dataset),
            output_dir=str(tmp_path / split),
            split=split,
            image_size=32,
        )
        parts = loading.split_for(cfg).parts
        bench = paper2.benchmark(cfg, "ae_bonet", model, 32, parts)
        path = cfg.run_dir / runfiles.benchmark_predictions("ae_bonet")
        assert (bench is not None) == expect and path.is_file() == expect
        if expect:
            assert bench["n"] == 12 and "intervals" in bench
            assert len(results.read_csv(path)) == 12
