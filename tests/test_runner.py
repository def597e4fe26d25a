"""nblib.apps.runner: several seeds of one series (papermill replaced by a stand-in that writes
what a notebook would), their resumption and the table across seeds."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nblib.apps import runner
from nblib.core import results
from nblib.report import seeds as seeds_report


class _SeededPapermill:
    """Writes the metrics.json a notebook would, its test MAE a function of the seed; the first
    seed also writes a split list. Fails for the seeds in ``fail`` (a killed run)."""

    def __init__(self, fail=()):
        self.calls, self.fail = [], set(fail)

    def __call__(self, nb, executed, parameters, **kw):
        seed, out = parameters["seed"], Path(parameters["output_dir"])
        self.calls.append((Path(nb).stem, seed, (out / "splits" / "official.csv").is_file()))
        if seed in self.fail:
            raise RuntimeError("killed")
        mae = {42: 20.0, 43: 22.0, 44: 24.0}[seed]
        results.write_json(
            out / Path(nb).stem / "metrics.json",
            {"metrics": {"test": {"mae": mae}, "mean_predictor": {"mae": 40.0}}},
        )
        if not (out / "splits" / "official.csv").is_file():
            results.write_text(out / "splits" / "official.csv", f"id,split\n1,test\n# {seed}\n")
        Path(executed).write_text("{}")


@pytest.fixture
def fake(monkeypatch):
    import papermill

    made = _SeededPapermill()
    monkeypatch.setattr(papermill, "execute_notebook", made)
    return made


def test_each_seed_runs_into_its_folder_on_the_first_seeds_split(tmp_path, fake):
    out = tmp_path / "o"
    assert runner.run("smoke", out=str(out), only="03", seeds=[42, 43, 44]) == 0
    assert [(nb, s) for nb, s, _ in fake.calls] == [("03_resnet50", s) for s in (42, 43, 44)]
    assert [had_split for *_, had_split in fake.calls] == [False, True, True]
    for s in (42, 43, 44):
        assert (out / f"seed-{s}" / "03_resnet50" / "metrics.json").is_file()
        split = (out / f"seed-{s}" / "splits" / "official.csv").read_text()
        assert split.endswith("# 42\n")  # the first seed's test images for every seed
    table = pd.read_csv(out / "seeds_summary.csv")
    row = table.iloc[0]
    assert row["notebook"] == "03_resnet50" and row["n"] == 3
    assert row["mean"] == pytest.approx(22.0) and row["sd"] == pytest.approx(2.0)
    assert "| 03_resnet50 |" in (out / "seeds_summary.md").read_text()


def test_a_killed_seed_resumes_and_finished_seeds_are_skipped(tmp_path, monkeypatch):
    import papermill

    out = tmp_path / "o"
    first = _SeededPapermill(fail={43})
    monkeypatch.setattr(papermill, "execute_notebook", first)
    assert runner.run("smoke", out=str(out), only="03", seeds=[42, 43]) == 1
    assert not (out / "seeds_summary.csv").exists()
    again = _SeededPapermill()
    monkeypatch.setattr(papermill, "execute_notebook", again)
    assert runner.run("smoke", out=str(out), only="03", seeds=[42, 43]) == 0
    assert [(nb, s) for nb, s, _ in again.calls] == [("03_resnet50", 43)]  # 42 was done
    assert pd.read_csv(out / "seeds_summary.csv").iloc[0]["n"] == 2


def test_seeds_are_parsed_and_refused_by_value():
    assert runner.parse_seeds("42, 43,44") == [42, 43, 44]
    assert runner.parse_seeds(None) is None
    for bad, says in (("42,x", "'x' is not an integer"), ("1,1", "1 is given twice")):
        with pytest.raises(ValueError, match=says):
            runner.parse_seeds(bad)
    assert runner.main(["--profile", "smoke", "--seeds", "4,four"]) == 2


def test_one_seed_alone_has_sd_unknown(tmp_path, fake):
    out = tmp_path / "o"
    assert runner.run("smoke", out=str(out), only="03", seeds=[42]) == 0
    df = seeds_report.table(out, [42], ["03_resnet50", "04_inception_v4"])
    assert list(df["notebook"]) == ["03_resnet50"] and pd.isna(df.iloc[0]["sd"])
