"""What closes a run of the series: the summary table (status, wall time, headline metric),
the HTML pages and index.html, without executing a notebook (papermill is replaced by a stand-in
that copies the notebook); the whole series at the smoke profile is in test_notebooks.py."""

from __future__ import annotations

import csv
import json
import os
import shutil

import pytest

from nblib.apps import runner
from nblib.core import results, timing
from nblib.report import summary


class _CopyingPapermill:
    """Stands in for papermill.execute_notebook: copies the notebook to its executed path."""

    def __init__(self):
        self.calls = []

    def __call__(self, nb, executed, parameters, **kw):
        self.calls.append((nb, dict(parameters)))
        self.tf_log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")  # what the kernel inherits
        shutil.copy(nb, executed)


@pytest.fixture
def fake_papermill(monkeypatch):
    import papermill

    fake = _CopyingPapermill()
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    return fake


def _metrics(folder, metrics):
    results.write_json(folder / "metrics.json", {"notebook": folder.name, "metrics": metrics})


def test_headline_reads_test_mae_beside_the_mean_predictor(tmp_path):
    _metrics(tmp_path / "03_resnet50", {"test": {"mae": 18.0}, "mean_predictor": {"mae": 36.0}})
    _metrics(
        tmp_path / "06_ae_bonet",
        {
            "models": {
                "ae_bonet": {"label": "AE-BoNet", "test": {"mae": 9.0}},
                "random_init": {"label": "AE-BoNet, random init", "test": {"mae": 1.0}},
            },
            "mean_predictor": {"mae": 30.0},
        },
    )
    stages = [
        {"stage": 1, "val_loss": 0.02, "psnr": 18.04},
        {"stage": 2, "val_loss": 0.01, "psnr": 21.0},
    ]
    _metrics(tmp_path / "05_autoencoder_pretraining", {"stages": stages})
    assert summary.headline(tmp_path / "03_resnet50") == {
        "metric": "test MAE (months)",
        "value": 18.0,
        "mean_predictor": 36.0,
        "ratio": 0.5,
    }
    bonet = summary.headline(tmp_path / "06_ae_bonet")
    assert bonet["metric"] == "AE-BoNet test MAE (months)" and bonet["ratio"] == pytest.approx(0.3)
    ae = summary.headline(tmp_path / "05_autoencoder_pretraining")
    assert ae["metric"] == "validation MSE after stage 2" and ae["value"] == 0.01
    assert ae["note"] == "PSNR 21.0 dB"
    assert summary.headline(tmp_path / "01_eda") == {}  # writes no metrics.json


def test_damaged_or_odd_metrics_are_named_not_raised(tmp_path):
    (tmp_path / "03_resnet50").mkdir()
    (tmp_path / "03_resnet50" / "metrics.json").write_text('{"metrics": {"test": ')
    got = summary.headline(tmp_path / "03_resnet50")
    assert "03_resnet50/metrics.json is damaged" in got["note"] and "value" not in got
    _metrics(tmp_path / "04_inception_v4", {"test": {"mae": "n/a"}, "mean_predictor": {}})
    got = summary.headline(tmp_path / "04_inception_v4")
    assert "04_inception_v4/metrics.json" in got["note"] and "'n/a' is not a number" in got["note"]


def test_durations_read_as_people_write_them():
    assert [timing.duration(s) for s in (None, 4.4, 59.6, 185, 3725)] == [
        "-",
        "4 s",
        "1 min 00 s",
        "3 min 05 s",
        "1 h 02 min",
    ]


def test_run_closes_with_summary_pages_and_index(tmp_path, fake_papermill, capsys):
    out = tmp_path / "o"
    _metrics(out / "03_resnet50", {"test": {"mae": 20.0}, "mean_predictor": {"mae": 40.0}})
    assert runner.run("smoke", out=str(out), only="2-3") == 0
    console = capsys.readouterr()
    assert "HTML rendering" not in console.err
    lines = console.out.splitlines()
    start = lines.index("[run_all] summary (also in summary.md and summary.csv):")
    table = lines[start + 1 : start + 2 + len(runner.notebooks())]
    assert table[0].split()[:3] == ["notebook", "status", "wall"]
    row03 = next(line for line in table if line.split()[0] == "03_resnet50")
    assert (
        row03.split()[1] == "done" and "test MAE (months)" in row03 and row03.split()[-1] == "0.50"
    )
    assert next(line for line in table if "01_eda" in line).split()[1:3] == ["not", "run"]
    with open(out / "summary.csv") as f:
        rows = {r["notebook"]: r for r in csv.DictReader(f)}
    assert rows["03_resnet50"]["status"] == "done" and float(rows["03_resnet50"]["ratio"]) == 0.5
    assert rows["08_comparison"]["status"] == "not run"
    assert "| 03_resnet50 | done |" in (out / "summary.md").read_text()
    for stem, title in (("02_preprocessing", "the input pipeline"), ("03_resnet50", "GELU ResNet")):
        page = (out / "notebooks" / f"{stem}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and title in page  # the notebook, rendered
    index = (out / "index.html").read_text()
    assert 'href="notebooks/03_resnet50.html"' in index and 'href="logs/03_resnet50.log"' in index
    assert 'href="summary.csv"' in index and "Every page was rendered" in index
    assert 'href="notebooks/01_eda.html"' not in index  # never executed: no link
    # A second run finds both done: they are listed as such, with the first run's times.
    assert runner.run("smoke", out=str(out), only="2-3") == 0
    assert len(fake_papermill.calls) == 2
    with open(out / "summary.csv") as f:
        rows = {r["notebook"]: r for r in csv.DictReader(f)}
    assert rows["03_resnet50"]["status"] == "done earlier" and rows["03_resnet50"]["seconds"]


def test_a_failed_rendering_is_named_on_the_console_and_in_the_index(
    tmp_path, fake_papermill, monkeypatch, capsys
):
    def broken(ipynb, target):
        raise RuntimeError("template not found")

    monkeypatch.setattr(summary, "render_notebook", broken)
    out = tmp_path / "o"
    (out / "08_comparison").mkdir(parents=True)
    (out / "08_comparison" / "report.md").write_text(
        "# Report\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert runner.run("smoke", out=str(out), only="3") == 0  # the results stand
    err = capsys.readouterr().err
    assert "HTML rendering of notebooks/03_resnet50.html failed" in err
    assert "RuntimeError: template not found" in err
    index = (out / "index.html").read_text()
    assert "notebooks/03_resnet50.html: could not be rendered" in index
    assert "template not found" in index
    report = (out / "08_comparison" / "report.html").read_text()
    assert "<table>" in report and "<td>2</td>" in report  # Markdown tables become HTML tables
    assert 'href="08_comparison/report.html"' in index
    assert "RuntimeError: template not found" in (out / "logs" / "render.log").read_text()


def test_set_counts_in_the_fingerprint_through_the_command_line(tmp_path, fake_papermill, capsys):
    args = ["--profile", "smoke", "--out", str(tmp_path / "o"), "--only", "3"]
    assert runner.main([*args, "--set", "epochs=2"]) == 0
    assert fake_papermill.calls[-1][1]["epochs"] == 2
    assert runner.main([*args, "--set", "epochs=2"]) == 0
    assert len(fake_papermill.calls) == 1
    assert "03_resnet50: already done, skipped" in capsys.readouterr().out
    assert runner.main([*args, "--set", "epochs=3"]) == 0
    assert len(fake_papermill.calls) == 2 and fake_papermill.calls[-1][1]["epochs"] == 3
    assert runner.main(args) == 0  # no --set at all is another setting again
    assert len(fake_papermill.calls) == 3
    marker = json.loads((tmp_path / "o" / ".done" / "03_resnet50.json").read_text())
    assert marker["set"] == {}


def test_kernel_logs_quietly_unless_the_user_chose_a_level(tmp_path, fake_papermill, monkeypatch):
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    assert runner.run("smoke", out=str(tmp_path / "a"), only="3") == 0
    assert fake_papermill.tf_log_level == "3" and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    assert runner.run("smoke", out=str(tmp_path / "b"), only="3") == 0
    assert fake_papermill.tf_log_level == "0"
