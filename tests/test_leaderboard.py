"""nblib.report.leaderboard: every model's score on the official test table, read back from the
run's metrics.json files (paper 1's own test set, paper 2's benchmark), beside published numbers."""

from __future__ import annotations

import json

import pandas as pd

from nblib.report import leaderboard, reference


def _ci(n, mae):
    return {
        "n": n,
        "mae": {"value": mae, "low": mae - 1, "high": mae + 1},
        "rmse": {"value": mae + 3, "low": mae + 2, "high": mae + 4},
        "r2": {"value": 0.8, "low": 0.7, "high": 0.9},
    }


def _test(mae):
    return {"mae": mae, "rmse": mae + 3, "r2": 0.8}


def _write(folder, doc):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(doc))


def test_every_model_scored_on_the_official_table_and_nothing_else(tmp_path):
    _write(
        tmp_path / "03_resnet50",
        {
            "params": {"split": "official"},
            "model": "resnet50",
            "metrics": {"test": _test(12.0), "intervals": _ci(200, 12.0), "train_seconds": 600},
        },
    )
    _write(
        tmp_path / "04_inception_v4",
        {  # its own random split: not the official table
            "params": {"split": "random"},
            "model": "inception_v4",
            "metrics": {"test": _test(5.0), "intervals": _ci(200, 5.0)},
        },
    )
    _write(
        tmp_path / "06_ae_bonet",
        {
            "params": {"split": "random"},
            "metrics": {
                "models": {
                    "ae_bonet": {
                        "label": "AE-BoNet",
                        "test": _test(3.0),
                        "train_seconds": 120,
                        "benchmark": {"test": _test(11.0), "intervals": _ci(200, 11.0)},
                    },
                    "vgg16_128": {"label": "VGG16", "test": _test(2.0)},
                }
            },
        },
    )  # no benchmark: left out
    _write(
        tmp_path / "07_beyond",
        {
            "params": {"split": "official"},
            "model": "beyond",
            "metrics": {
                "test": _test(9.0),
                "intervals": _ci(200, 9.0),
                "train_seconds": 1200,
                "rungs": {
                    "long": {
                        "label": "...",
                        "test": _test(9.5),
                        "test_tta": _test(9.4),
                        "intervals_tta": _ci(200, 9.4),
                        "train_seconds": 900,
                    }
                },
                "calibration": {"corrected": _test(8.8), "corrected_intervals": _ci(200, 8.8)},
            },
        },
    )
    rows = leaderboard.entries(tmp_path)
    got = [(r["notebook"], r["model"], r["mae"]) for r in rows]
    assert got == [
        ("03_resnet50", "GELU ResNet-50", 12.0),
        ("06_ae_bonet", "AE-BoNet", 11.0),
        ("07_beyond", "07 ensemble", 9.0),
        ("07_beyond", "07 ensemble, bias-corrected", 8.8),
        ("07_beyond", "07 long", 9.4),
    ]
    assert rows[0]["mae_low"] == 11.0 and rows[0]["train_minutes"] == 10.0
    md_path, csv_path = leaderboard.write(tmp_path)
    md = md_path.read_text()
    assert "| 03_resnet50 | GELU ResNet-50 | 12.0 (11.0-13.0) | 15.0 (14.0-16.0) |" in md
    assert "(200 images)" in md
    for ref in reference.TEST200_PUBLISHED:
        assert ref["system"] in md
    assert list(pd.read_csv(csv_path).columns) == leaderboard.COLUMNS


def test_a_run_without_official_scores_writes_nothing(tmp_path):
    assert leaderboard.write(tmp_path) is None
