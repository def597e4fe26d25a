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
    assert seeds_report.parse_seeds("42, 43,44") == [42, 43, 44]
    assert seeds_report.parse_seeds(None) is None
    for bad, says in (("42,x", "'x' is not an integer"), ("1,1", "1 is given twice")):
        with pytest.raises(ValueError, match=says):
            seeds_report.parse_seeds(bad)
    assert runner.main(["--profile", "smoke", "--seeds", "4,four"]) == 2


def test_one_seed_alone_has_sd_unknown(tmp_path, fake):
    out = tmp_path / "o"
    assert runner.run("smoke", out=str(out), only="03", seeds=[42]) == 0
    df = seeds_report.table(out, [42], ["03_resnet50", "04_inception_v4"])
    assert list(df["notebook"]) == ["03_resnet50"] and pd.isna(df.iloc[0]["sd"])


def _metrics(folder: Path, doc: dict) -> None:
    results.write_json(folder / "metrics.json", doc)


def test_every_model_across_seeds_with_its_mean_and_sd(tmp_path):
    out = tmp_path / "o"
    for seed, shift in ((42, 0.0), (43, 2.0)):
        ci = {"mae": {"value": 20.0 + shift, "low": 18.0 + shift, "high": 22.0 + shift}}
        test = {"mae": 20.0 + shift, "rmse": 25.0, "r2": 0.5 + shift / 10}
        _metrics(
            out / f"seed-{seed}" / "03_resnet50",
            {
                "model": "resnet50",
                "metrics": {
                    "test": test,
                    "intervals": ci,
                    "mean_predictor": {"mae": 40.0},
                    "train_seconds": 60.0 * (1 + shift),
                },
            },
        )
        twin = {"label": "AE-BoNet [random_init]", "test": {"mae": 30.0, "rmse": 35.0, "r2": 0.1}}
        if seed == 42:  # the twin only in one seed: n counts the seeds that scored it
            extra = {"random_init": twin}
        else:
            extra = {}
        _metrics(
            out / f"seed-{seed}" / "06_ae_bonet",
            {
                "metrics": {
                    "models": {"ae_bonet": {"label": "AE-BoNet", "test": test}, **extra},
                    "mean_predictor": {"mae": 50.0},
                }
            },
        )
        _metrics(out / f"seed-{seed}" / "05_autoencoder_pretraining", {"metrics": {"stages": []}})
    every = seeds_report.models(
        out, [42, 43], ["03_resnet50", "05_autoencoder_pretraining", "06_ae_bonet"]
    )
    assert list(every["model"]) == ["GELU ResNet-50", "AE-BoNet", "AE-BoNet [random_init]"]
    r = every.iloc[0]
    assert r["seed 42"] == "20.00 (18.00-22.00)" and r["seed 43"] == "22.00 (20.00-24.00)"
    assert r["n"] == 2 and r["mae_mean"] == pytest.approx(21.0)
    assert r["mae_sd"] == pytest.approx(2**0.5) and r["r2_mean"] == pytest.approx(0.6)
    assert r["ratio_mean"] == pytest.approx(21.0 / 40.0) and r[
        "train_minutes_mean"
    ] == pytest.approx(2.0)
    assert every.iloc[1]["ratio_mean"] == pytest.approx(21.0 / 50.0)
    assert pd.isna(every.iloc[1]["train_minutes_mean"])  # none stored: unknown, not 0
    twin_row = every.iloc[2]
    assert twin_row["n"] == 1 and twin_row["seed 43"] == "-" and pd.isna(twin_row["mae_sd"])
    # The command writes both tables again from the folders, without training anything.
    assert seeds_report.main([str(out), "--seeds", "42,43"]) == 0
    text = (out / "seeds_summary.md").read_text()
    assert "| 06_ae_bonet | AE-BoNet | 20.00 | 22.00 | 21.00 ± 1.41 |" in text
    assert (
        "| 03_resnet50 | GELU ResNet-50 | 20.00 (18.00-22.00) | 22.00 (20.00-24.00) | 21.00 ± 1.41 | 0.525 ± 0.035 |"
        in text
    )
    assert pd.read_csv(out / "seeds_models.csv")["n"].tolist() == [2, 2, 1]
    assert seeds_report.main([str(out), "--seeds", "42,44"]) == 2  # no folder for 44


def test_a_small_headline_keeps_its_significant_digits(tmp_path):
    out = tmp_path / "o"
    for seed, mse in ((42, 0.002252), (43, 0.0)):
        stage = {"stage": 5, "val_loss": mse, "psnr": 27.2}
        _metrics(
            out / f"seed-{seed}" / "05_autoencoder_pretraining", {"metrics": {"stages": [stage]}}
        )
    df = seeds_report.table(out, [42, 43], ["05_autoencoder_pretraining"])
    assert df.iloc[0]["seed 42"] == "0.00225" and df.iloc[0]["seed 43"] == "0.00000"
    assert "| 0.00113 | 0.00159 | 0.00000 | 0.00225 |" in seeds_report.markdown(df)
