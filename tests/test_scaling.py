"""nblib.experiments.scaling: the data-scaling curve's nested subsets and its sizes."""

from __future__ import annotations

import numpy as np
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
