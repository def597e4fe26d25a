"""Shared fixtures: a tiny synthetic data set, the real data beside the project, quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from nblib.core import config
from nblib.data import phantom  # noqa: E402

ROOT = config.ROOT
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """48 training, 12 validation and 12 test phantoms in the RSNA layout."""
    out = tmp_path_factory.mktemp("tiny") / "phantoms"
    return phantom.generate(out, 48, 12, 12, seed=7)


@pytest.fixture(scope="session")
def shared_dir():
    """``../shared`` (the real RSNA sample and label tables); absent in a user's own clone."""
    if not (SHARED / "data" / "rsna-sample").is_dir():
        pytest.skip("../shared/data is not present (a user's own clone): real-data checks skipped")
    return SHARED
