"""The field's public benchmark: the rows of a data folder's official test table.

On RSNA's data that table is the official test-200 (ground truth: the mean of six readers), the
set every published result is reported on. A protocol that splits the training table alone
(paper 2's ``random``) tests on 200 of its own training images instead; its models are scored on
these rows as well, so that every model of the series compares on the same images. Nothing is
ever chosen on them: they are read after training, for reporting only.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nblib.data import loading


def official_test(data_dir: Path | str) -> pd.DataFrame | None:
    """The official test table's rows of ``data_dir`` (validated labels, images not checked:
    the series' data checks read them already), or None when the folder has no test table."""
    df = loading.load_dataset(data_dir, check_images=False)
    rows = df[df["split"] == "test"].reset_index(drop=True)
    return rows if len(rows) else None
