"""Damaged result files stop the report; the runner locks its folder and says what failed, whole.

No notebook is executed here: result folders are written by hand and papermill is stood in for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from nblib.apps import runner
from nblib.core import config, locks, results
from nblib.report import reporting


def _run_folder(tmp_path):
    """A run folder holding notebook 03's results only: metrics, 40 predictions, a history."""
    out = tmp_path / "run"
    rng = np.random.default_rng(0)
    true = rng.uniform(10, 220, 40).round(1)
    pred = pd.DataFrame(
        {
            "id": [f"{i:05d}" for i in range(1370, 1410)],
            "true": true,
            "predicted": true + rng.normal(0, 20, 40),
            "male": [i % 2 == 0 for i in range(40)],
            "split": "test",
        }
    )
    results.write_csv(out / "03_resnet50" / "predictions.csv", pred)
    results.write_csv(
        out / "03_resnet50" / "history.csv",
        pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.5, 1.5]}),
    )
    test = {"loss": 0.1, "rmse": 20.0, "mape": 15.0, "r2": 0.6, "mae": 16.0}
    doc = {
        "notebook": "03_resnet50",
        "profile": "smoke",
        "params": {"data_dir": "/d", "split": "official", "image_size": 80, "width": 0.125},
        "metrics": {
            "test": test,
            "mean_predictor": {k: v * 2 for k, v in test.items()},
            "epochs_run": 2,
            "train_seconds": 3.0,
            "n_train": 100,
            "n_val": 20,
            "n_test": 40,
        },
        "provenance": {"hardware": {"cpus": 2, "gpus": []}},
    }
    results.write_json(out / "03_resnet50" / "metrics.json", doc)
    return out, pred, doc


def _female_mae(rep):
    g = rep.tables["error_by_group"]
    return g[(g["model"] == "ResNet-50 (GELU)") & (g["group"] == "female")]["MAE"].iloc[0]


def test_good_results_build(tmp_path):
    out, pred, _ = _run_folder(tmp_path)
    rep = reporting.build(out)
    female = pred[~pred["male"]]
    assert _female_mae(rep) == pytest.approx(
        (female["predicted"] - female["true"]).abs().mean(), 0.01
    )


def test_truncated_predictions_stop_the_report(tmp_path):
    out, _, _ = _run_folder(tmp_path)
    p = out / "03_resnet50" / "predictions.csv"
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])  # cut mid-line, as a full disk or a killed copy leaves it
    with pytest.raises(reporting.ResultError, match="predictions.csv is damaged") as exc:
        reporting.build(out)
    assert "cut short" in str(exc.value)
    lines = raw.decode().splitlines(keepends=True)
    p.write_text("".join(lines[:21]))  # cut at a line end: 20 of the 40 rows
    with pytest.raises(
        reporting.ResultError, match="holds 20 rows but metrics.json records n_test = 40"
    ):
        reporting.build(out)


@pytest.mark.parametrize(
    "value, words",
    [
        ("abc", "metrics.test.rmse is 'abc', not a number"),
        ("20.0", "'20.0', not a number"),
        (True, "True"),
    ],
)
def test_non_numeric_metric_stops_the_report(tmp_path, value, words):
    out, _, doc = _run_folder(tmp_path)
    doc["metrics"]["test"]["rmse"] = value
    results.write_json(out / "03_resnet50" / "metrics.json", doc)
    with pytest.raises(reporting.ResultError, match="03_resnet50/metrics.json is damaged") as exc:
        reporting.build(out)
    assert words in str(exc.value)


def test_missing_metric_and_text_in_predictions(tmp_path):
    out, pred, doc = _run_folder(tmp_path)
    del doc["metrics"]["test"]["mae"]
    results.write_json(out / "03_resnet50" / "metrics.json", doc)
    with pytest.raises(reporting.ResultError, match="metrics.test.mae is missing"):
        reporting.build(out)
    out, pred, doc = _run_folder(tmp_path / "b")
    pred["predicted"] = pred["predicted"].astype(object)
    pred.loc[3, "predicted"] = "n/a"
    results.write_csv(out / "03_resnet50" / "predictions.csv", pred)
    with pytest.raises(
        reporting.ResultError, match=r"no numeric 'predicted' value \(line\(s\) 5\)"
    ):
        reporting.build(out)


def test_null_metric_is_named_in_the_differences(tmp_path):
    out, _, doc = _run_folder(tmp_path)
    doc["metrics"]["test"]["rmse"] = None  # how a NaN (a diverged model) is stored
    results.write_json(out / "03_resnet50" / "metrics.json", doc)
    notes = reporting.differences(reporting.build(out))
    assert any(
        "ResNet-50 (GELU): test RMSE (or the mean predictor's) is not a number" in n for n in notes
    )


def test_corrupt_json_and_history_name_the_file(tmp_path):
    out, _, _ = _run_folder(tmp_path)
    (out / "03_resnet50" / "history.csv").write_text("epoch,loss\n1,abc\n")
    with pytest.raises(reporting.ResultError, match="history.csv is damaged: column"):
        reporting.build(out)
    (out / "03_resnet50" / "metrics.json").write_text('{"metrics": {"test": ')
    with pytest.raises(results.ResultError, match="metrics.json is damaged: not valid JSON"):
        reporting.build(out)


def test_safe_csv_reader_names_the_file(tmp_path):
    p = tmp_path / "history.csv"
    p.write_bytes(b"")
    with pytest.raises(results.ResultError, match="history.csv is damaged: it is empty"):
        results.read_csv(p)
    p.write_bytes(b'epoch,loss\n1,"2\n')
    with pytest.raises(results.ResultError, match="history.csv is damaged"):
        results.read_csv(p)


def test_reporting_command_exits_non_zero_naming_the_file(tmp_path):
    out, _, _ = _run_folder(tmp_path)
    p = out / "03_resnet50" / "predictions.csv"
    p.write_bytes(p.read_bytes()[:-7])
    res = subprocess.run(
        [sys.executable, "-m", "nblib.report.reporting", str(out)],
        capture_output=True,
        text=True,
        cwd=config.ROOT,
        timeout=120,
    )
    assert res.returncode == 1 and "predictions.csv is damaged" in res.stderr
    assert "Traceback" not in res.stderr


def test_ids_keep_their_leading_zeros(tmp_path):
    out, _, _ = _run_folder(tmp_path)
    back = reporting.build(out).predictions["ResNet-50 (GELU)"]
    assert back["id"].iloc[7] == "01377"  # was 1377
    assert results.read_csv(out / "03_resnet50" / "predictions.csv")["id"].iloc[7] == "01377"


# --- the runner ----------------------------------------------------------------------------------


def test_set_values_are_typed_and_names_checked():
    got = runner.parse_overrides(
        ["drop_bad=true", "epochs=3", "learning_rate=0.5", "baselines=[vgg16]"]
    )
    assert got == {"drop_bad": True, "epochs": 3, "learning_rate": 0.5, "baselines": ["vgg16"]}
    with pytest.raises(SystemExit, match="drop_bads: no such parameter \\(did you mean drop_bad"):
        runner.parse_overrides(["drop_bads=true"])
    with pytest.raises(SystemExit, match="use --out instead"):
        runner.parse_overrides(["output_dir=/tmp/x"])


def test_set_bad_value_is_refused_before_anything_runs(tmp_path, capsys):
    code = runner.run("smoke", out=str(tmp_path / "o"), only="03", overrides={"epochs": 2.7})
    assert code == 2 and "epochs must be a whole number" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_out_under_a_file_is_named(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code = runner.run("smoke", out=str(tmp_path / "afile" / "run"), only="01")
    err = capsys.readouterr().err
    assert code == 2 and "afile is a file" in err and "choose another --out" in err


def test_data_that_is_a_file_is_named(tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("id,boneage,male\n")
    code = runner.run(
        "smoke", data=str(tmp_path / "labels.csv"), out=str(tmp_path / "o"), only="01"
    )
    assert code == 2 and "is a file, not a folder" in capsys.readouterr().err


class _FakePapermill:
    """Stands in for papermill.execute_notebook: records what it was given, or fails."""

    def __init__(self, fail_with: str | None = None):
        self.calls, self.fail_with = [], fail_with

    def __call__(self, nb, executed, parameters, **kw):
        self.calls.append((nb, dict(parameters), os.environ.get(config.SET_ENV)))
        if self.fail_with:
            from papermill.exceptions import PapermillExecutionError

            raise PapermillExecutionError(
                3, 3, "load()", "DataError", self.fail_with, ["\x1b[31mTraceback line\x1b[0m"]
            )


def test_set_reaches_the_notebooks_and_the_fingerprint(tmp_path, monkeypatch):
    import papermill

    fake = _FakePapermill()
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    out = tmp_path / "o"
    assert (
        runner.run("smoke", out=str(out), only="03", overrides={"drop_bad": True, "epochs": 2}) == 0
    )
    nb, params, env = fake.calls[-1]
    assert params["epochs"] == 2 and "drop_bad" not in params  # not in 03's parameters cell
    assert json.loads(env) == {"drop_bad": True, "epochs": 2}
    assert os.environ.get(config.SET_ENV) is None  # restored after the run
    runner.run("smoke", out=str(out), only="03", overrides={"drop_bad": True, "epochs": 2})
    assert len(fake.calls) == 1  # same settings: skipped as done
    runner.run("smoke", out=str(out), only="03", overrides={"drop_bad": False, "epochs": 2})
    assert len(fake.calls) == 2  # another --set: runs again


def test_failure_prints_the_whole_message_and_logs_it(tmp_path, monkeypatch, capsys):
    import papermill

    message = "30 bad row(s) in /data:\n" + "\n".join(
        f"  - id {i}: image file is missing" for i in range(30)
    )
    monkeypatch.setattr(papermill, "execute_notebook", _FakePapermill(fail_with=message))
    out = tmp_path / "o"
    assert runner.run("smoke", out=str(out), only="03") == 1
    err = capsys.readouterr().err
    assert "03_resnet50: FAILED" in err and "DataError: 30 bad row(s) in /data:" in err
    assert "id 0: image file is missing" in err and "id 29:" in err  # header and first rows kept
    log = (out / "logs" / "03_resnet50.log").read_text()
    assert "DataError: 30 bad row(s)" in log and "id 0:" in log and "Traceback line" in log
    assert "\x1b[" not in log


def _holder(folder):
    """A second process that takes the folder's lock and keeps it until killed."""
    code = (
        "import sys, time; from nblib.core import locks\n"
        "with locks.lock_folder(sys.argv[1]):\n"
        "    print('held', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=config.ROOT,
        env={**os.environ, "PYTHONPATH": str(config.ROOT)},
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_two_runs_on_one_folder(tmp_path, capsys):
    out = tmp_path / "o"
    proc = _holder(out)
    try:
        code = runner.run("smoke", out=str(out), only="03")
        err = capsys.readouterr().err
        assert code == 3 and "is in use by another run" in err and f"pid {proc.pid}" in err
        with pytest.raises(locks.FolderLocked, match="on host"):
            with locks.lock_folder(out):
                pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a killed run must not leave a lock behind
        proc.wait(timeout=30)
    deadline = time.time() + 10
    while True:
        try:
            with locks.lock_folder(out) as lock:
                assert f"pid {os.getpid()}" in lock.read_text()
            break
        except locks.FolderLocked:
            assert time.time() < deadline, "the lock of a killed run was not released"
            time.sleep(0.1)


def test_results_are_as_readable_as_a_plainly_written_file(tmp_path):
    # The atomic writes go through mkstemp (private, 0600); the result must not stay private.
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = [
        results.write_text(tmp_path / "a.txt", "x"),
        results.write_json(tmp_path / "b.json", {"a": 1}),
        results.write_csv(tmp_path / "c.csv", pd.DataFrame({"a": [1]})),
    ]
    for path in written:
        assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777, path
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
