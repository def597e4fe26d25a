"""nblib.experiments.scaling: the data-scaling curve's nested subsets and its sizes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nblib.core import config
from nblib.experiments import scaling


def test_subsets_are_nested_seeded_and_without_repeats():
    small, large = scaling.subset_index(1000, 100, 42), scaling.subset_index(1000, 400, 42)
    assert len(small) == 100 and len(set(small)) == 100
    assert set(small) <= set(large)  # each size holds the smaller ones
    assert np.array_equal(small, scaling.subset_index(1000, 100, 42))
    assert not np.array_equal(small, scaling.subset_index(1000, 100, 43))


def test_sizes_drop_the_full_set_and_refuse_what_cannot_be_drawn():
    assert scaling.sizes_of([3000, 750, 750, 11151], 11151) == [750, 3000]
    with pytest.raises(ValueError, match="larger than the 1,000 training images"):
        scaling.sizes_of([750, 1500], 1000)


def test_the_parameter_is_checked():
    with pytest.raises(config.ConfigError, match="scaling_sizes"):
        config.make("07_beyond", "cpu", scaling_sizes=(1,))
    assert config.make("07_beyond", "smoke").scaling_sizes == (20,)


def _rung(test: np.ndarray):
    from nblib.experiments import beyond

    return beyond.Rung(
        "p", "point", beyond.Recipe(), None, pd.DataFrame(), test[None], test[None], 60.0, 1
    )


def test_each_point_is_compared_with_the_one_before_on_the_same_images():
    rng = np.random.default_rng(0)
    true = rng.uniform(10, 220, 200)
    parts = {
        "train": pd.DataFrame({"boneage": rng.uniform(10, 220, 50)}),
        "test": pd.DataFrame({"boneage": true}),
    }
    worse = true + rng.normal(0, 30, 200)
    better = true + rng.normal(0, 5, 200)
    first = scaling._row(100, _rung(worse), parts, None)
    second = scaling._row(200, _rung(better), parts, worse)
    same = scaling._row(400, _rung(better), parts, better)
    assert first["verdict"] is None and first["vs_previous"] is None
    assert second["verdict"] == "better" and second["test_mae"] < first["test_mae"]
    assert second["vs_previous"].startswith("-")
    assert same["verdict"] == "no difference shown"
    assert first["test_mae_low"] <= first["test_mae"] <= first["test_mae_high"]
