"""Two finished 07 folders compared on the same images: validation decides, test is read after."""

import numpy as np
import pandas as pd
import pytest

from nblib.report import compare


def _folder(path, val_pred, test_pred, val_true, test_true, ids_val=None):
    path.mkdir(parents=True)
    ids_val = np.arange(len(val_true)) if ids_val is None else ids_val
    pd.DataFrame(
        {"id": ids_val, "true": val_true, "predicted": val_pred, "corrected": val_pred}
    ).to_csv(path / "validation_predictions.csv", index=False)
    pd.DataFrame(
        {
            "id": 1000 + np.arange(len(test_true)),
            "true": test_true,
            "predicted": test_pred,
            "corrected": test_pred,
            "split": "test",
        }
    ).to_csv(path / "predictions.csv", index=False)
    return path


@pytest.fixture
def ages():
    rng = np.random.default_rng(0)
    return rng.uniform(10, 220, 400), rng.uniform(10, 220, 120), rng


def test_a_clearly_better_candidate_is_better_on_validation_and_the_roles_are_named(tmp_path, ages):
    val, test, rng = ages
    a = _folder(
        tmp_path / "a", val + rng.normal(0, 20, 400), test + rng.normal(0, 20, 120), val, test
    )
    b = _folder(
        tmp_path / "b", val + rng.normal(0, 8, 400), test + rng.normal(0, 8, 120), val, test
    )
    df = compare.compare(a, b).set_index("split")
    assert list(df.index) == ["validation", "test"]
    assert df.loc["validation", "role"] == "the choice"
    assert df.loc["test", "role"] == "read after the choice"
    assert df.loc["validation", "images"] == 400 and df.loc["test", "images"] == 120
    assert df.loc["validation", "mae_second"] < df.loc["validation", "mae_first"]
    assert df.loc["validation", "difference"] == pytest.approx(
        df.loc["validation", "mae_second"] - df.loc["validation", "mae_first"]
    )
    assert df.loc["validation", "high"] < 0 and df.loc["validation", "verdict"] == "better"
    back = compare.compare(b, a).set_index("split")
    assert back.loc["validation", "verdict"] == "worse"


def test_the_same_model_twice_shows_no_difference_even_in_another_row_order(tmp_path, ages):
    val, test, rng = ages
    pred = val + rng.normal(0, 10, 400)
    a = _folder(tmp_path / "a", pred, test + 5, val, test)
    order = rng.permutation(400)
    b = _folder(tmp_path / "b", pred[order], test + 5, val[order], test, ids_val=order)
    df = compare.compare(a, b).set_index("split")
    assert df.loc["validation", "difference"] == 0.0
    assert df.loc["validation", "verdict"] == "no difference shown"


def test_runs_on_other_images_or_other_labels_are_refused_by_name(tmp_path, ages):
    val, test, rng = ages
    a = _folder(tmp_path / "a", val, test, val, test)
    b = _folder(tmp_path / "b", val, test, val, test, ids_val=np.arange(400) + 7)
    with pytest.raises(ValueError, match=r"validation .*not scored on the same images.*id"):
        compare.compare(a, b)
    other = val.copy()
    other[3] += 12.0
    c = _folder(tmp_path / "c", val, test, other, test)
    with pytest.raises(ValueError, match=r"image 3 has true age"):
        compare.compare(a, c)
    with pytest.raises(ValueError, match="column must be one of"):
        compare.compare(a, a, column="spread")


def test_the_command_prints_the_table_and_refuses_a_missing_folder_plainly(tmp_path, ages, capsys):
    val, test, rng = ages
    a = _folder(tmp_path / "a", val + 9, test + 9, val, test)
    b = _folder(tmp_path / "b", val + 3, test + 3, val, test)
    assert compare.main([str(a), str(b), "--column", "corrected"]) == 0
    out = capsys.readouterr().out
    assert (
        "| validation (the choice) | 400 | 9.00 | 3.00 | -6.00 (-6.00 to -6.00) | better |" in out
    )
    assert compare.main([str(a), str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "validation_predictions.csv" in err and "does not exist" in err
