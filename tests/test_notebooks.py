"""The notebook series: clean notebooks in git, the whole series through run_all.sh at the smoke
profile (killed during notebook 04 and resumed; what its console shows; the HTML pages and
index.html it leaves), the report built from result files, and notebooks run the way JupyterLab
runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from nblib.apps import runner
from nblib.core import config, results
from nblib.report import reporting, summary
from nblib.train import statistics

# Every test here executes notebooks or reads a smoke series run once for the module: the quick
# loop (./run_tests.sh --quick) leaves them to the full suite.
pytestmark = pytest.mark.notebook

ROOT = config.ROOT
NOTEBOOKS = runner.notebooks()
EXPECTED = [
    "01_eda",
    "02_preprocessing",
    "03_resnet50",
    "04_inception_v4",
    "05_autoencoder_pretraining",
    "06_ae_bonet",
    "07_beyond",
    "08_comparison",
]


def test_series_is_complete_and_numbered():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("nb_path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_follows_the_skeleton(nb_path):
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{nb_path.name} cell {i} has outputs committed"
            assert cell.get("execution_count") is None, (
                f"{nb_path.name} cell {i} has an execution count"
            )
    params = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, f"{nb_path.name} needs exactly one cell tagged 'parameters'"
    for name in ("profile", "seed", "data_dir", "output_dir"):
        assert f"{name} =" in params[0].source, f"{nb_path.name}: parameter {name} missing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    config_cell = nb.cells[nb.cells.index(params[0]) + 1].source
    assert f'config.from_notebook("{nb_path.stem}", globals())' in config_cell, (
        f"{nb_path.name}: the cell after the parameters must gather them into the config"
    )
    for c in nb.cells:
        assert "import *" not in c.source and "\nclass " not in c.source


@pytest.mark.notebook
def test_papermill_parameters_reach_the_config(tmp_path):
    """A notebook run by papermill: its injected cell overrides the parameters cell, and a
    configuration field the cell does not declare (``-p patience 2``) counts too."""
    (tmp_path / "smoke.yaml").write_text("common:\n  epochs: 1\n  image_size: 80\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from pathlib import Path\nfrom nblib.core import config\n"
            "config.NOTEBOOK_DIR = config.PARAMS_DIR = Path.cwd()  # this folder's notebook, profile"
        ),
        nbformat.v4.new_code_cell(
            'profile = "cpu"\nseed = 42\nepochs = None\nlabels_dir = ""\nimage_size = None',
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(
            'cfg = config.from_notebook("01_eda", globals())\ncfg.save(Path.cwd() / "config.json")'
        ),
    ]
    nbformat.write(nb, tmp_path / "01_eda.ipynb")
    import papermill as pm

    pm.execute_notebook(
        str(tmp_path / "01_eda.ipynb"),
        str(tmp_path / "executed.ipynb"),
        parameters={"profile": "smoke", "epochs": 3, "labels_dir": "tables", "patience": 2},
        kernel_name="python3",
        language="python",
        cwd=str(tmp_path),
        progress_bar=False,
    )
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert (cfg["profile"], cfg["epochs"], cfg["patience"]) == ("smoke", 3, 2)
    assert (cfg["seed"], cfg["image_size"]) == (42, 80)  # the cell's default, the profile's
    assert cfg["labels_dir"] == str(ROOT / "tables")


def test_select_ranges():
    nbs = runner.notebooks()
    assert [p.stem[:2] for p in runner.select(nbs, "03-05")] == ["03", "04", "05"]
    assert [p.stem[:2] for p in runner.select(nbs, "2,8")] == ["02", "08"]
    assert [p.stem[:2] for p in runner.select(nbs, "06-")] == ["06", "07", "08"]
    with pytest.raises(SystemExit, match="no notebook matches"):
        runner.select(nbs, "42")


def _run_all(out: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "run_all.sh"), "--profile", "smoke", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole series at the smoke profile, killed while notebook 04 runs, then resumed."""
    out = tmp_path_factory.mktemp("smoke_run")
    proc = subprocess.Popen(
        ["bash", str(ROOT / "run_all.sh"), "--profile", "smoke", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    log = out / "logs" / "04_inception_v4.log"
    deadline = time.time() + 600
    killed = False
    while time.time() < deadline and proc.poll() is None:
        if log.is_file() and log.stat().st_size > 0:
            time.sleep(3)  # let notebook 04 get into its work
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.5)
    first_output = proc.communicate(timeout=60)[0]
    assert killed, f"the series ended before notebook 04 started:\n{first_output[-3000:]}"
    assert not (out / ".done" / "04_inception_v4.json").exists()
    resumed = _run_all(out)
    assert resumed.returncode == 0, (
        f"resumed series failed:\n{resumed.stdout[-4000:]}\n{resumed.stderr[-4000:]}"
    )
    return out, first_output, resumed.stdout + resumed.stderr


# What framework messages look like: absl/glog lines (I0000 00:00:...), TensorFlow, XLA, CUDA,
# oneDNN, Python warnings.
FRAMEWORK = re.compile(
    r"^[IWEF]\d{4} |tensorflow|absl|xla|cuda|onednn|warning|deprecat|traceback", re.IGNORECASE
)
EPOCH_LINE = re.compile(r"^\[run_all\] (\w+): (\w+) epoch (\d+)/(\d+): .*, ETA ")


def test_console_shows_progress_and_no_framework_messages(smoke_run):
    out, first, resumed = smoke_run
    epochs = []
    for console in (first, resumed):
        for line in console.splitlines():
            # run_all's own lines, the bootstrap's, and the summary table's indented rows only
            assert line.startswith(("[run_all] ", "[bootstrap] ", "  ")), line
            assert not FRAMEWORK.search(line), line
            m = EPOCH_LINE.match(line)
            if m:
                epochs.append(m.groups())
    # at most one line per epoch per notebook and model; 04 printed its epoch after the resume
    assert len(epochs) == len(set(epochs))
    assert ("04_inception_v4", "inception_v4", "1", "1") in epochs
    assert {e[0] for e in epochs} >= {"03_resnet50", "05_autoencoder_pretraining", "06_ae_bonet"}
    # the rest of the notebook's output is kept in its log, not shown
    assert "Trained epochs 1-1 in" in (out / "logs" / "03_resnet50.log").read_text()
    assert "Trained epochs" not in first + resumed


# What a reader of an executed notebook must not meet: the frameworks' start-up lines, text-mode
# progress bars (each redraw kept as a line of its own) and the machine's own folders.
NOT_ON_A_PAGE = re.compile(
    r"^[IWEF]\d{4} |absl::|cuda|onednn|cuInit|IProgress|\d+%\|[^\n]*\||it/s\]|\r",
    re.IGNORECASE | re.MULTILINE,
)


def _page_texts(nb_path: Path):
    """Every output of an executed notebook as ``(cell index, kind, text)``."""
    nb = nbformat.read(nb_path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                yield i, o.get("name"), o.get("text", "")
            for mime, value in (o.get("data") or {}).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    yield i, mime, value if isinstance(value, str) else json.dumps(value)
            if o.get("output_type") == "error":
                yield i, "error", "\n".join(o.get("traceback", []))


def test_executed_notebooks_hold_no_framework_line_text_bar_or_machine_path(smoke_run):
    out = smoke_run[0]
    pages = sorted((out / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in pages] == EXPECTED
    machine = [str(ROOT), str(ROOT.resolve())]
    for page in pages:
        for i, kind, text in _page_texts(page):
            where = f"{page.name} cell {i} ({kind})"
            assert kind != "stderr", f"{where} wrote to stderr: {text[:300]!r}"
            m = NOT_ON_A_PAGE.search(text)
            assert m is None, f"{where}: {m.group(0)!r} in {text[:300]!r}"
            for folder in machine:
                assert folder not in text, (
                    f"{where} shows the machine's path {folder}: {text[:300]!r}"
                )
            # the run folder the test chose outside the repository may be named as chosen,
            # but what lies inside it is shown relative to it
            assert f"{out}/" not in text, (
                f"{where} shows a path inside the run folder: {text[:300]!r}"
            )


def test_run_leaves_index_linking_every_notebook_and_the_report(smoke_run):
    out, _, resumed = smoke_run
    index = (out / "index.html").read_text()
    links = set(re.findall(r'href="([^"]+)"', index))
    for stem in EXPECTED:
        assert f"notebooks/{stem}.html" in links and f"logs/{stem}.log" in links, stem
        assert (out / "notebooks" / f"{stem}.html").read_text().startswith("<!DOCTYPE html>")
    page = (out / "notebooks" / "03_resnet50.html").read_text()
    assert re.search(r'<img [^>]*src="data:image/png;base64,', page)  # figures embedded
    assert {"08_comparison/report.html", "summary.md", "summary.csv"} <= links
    assert all((out / link).exists() for link in links)
    report = (out / "08_comparison" / "report.html").read_text()
    assert "<table>" in report and 'src="all_training_curves.png"' in report
    # the summary closes the console and the run folder: every notebook done, 03's test MAE
    table = {r["notebook"]: r for r in summary.rows(out, EXPECTED, {})}
    assert all(r["status"] == "done earlier" for r in table.values())
    m03 = results.read_json(out / "03_resnet50" / "metrics.json")["metrics"]
    mae = m03["test"]["mae"]
    assert table["03_resnet50"]["value"] == pytest.approx(mae)
    assert "[run_all] summary (also in summary.md and summary.csv):" in resumed
    row = next(line for line in resumed.splitlines() if line.startswith("  03_resnet50 "))
    shown = statistics.fmt_interval(m03["intervals"]["mae"], 1)  # 28.5 (26.1-31.0)
    assert row.split()[1:3] == ["done", "earlier"] and f" {shown} " in row
    assert shown in (out / "summary.md").read_text()
    csv = results.read_csv(out / "summary.csv").set_index("notebook")
    assert csv.loc["03_resnet50", "value"] == pytest.approx(mae)
    assert csv.loc["03_resnet50", "low"] == pytest.approx(m03["intervals"]["mae"]["low"])


def test_interrupted_series_resumes_without_rerunning_finished_notebooks(smoke_run):
    out, _, resumed = smoke_run
    for stem in ("01_eda", "02_preprocessing", "03_resnet50"):
        assert f"{stem}: already done, skipped" in resumed, resumed
    for stem in EXPECTED[3:]:
        assert f"{stem}: done in" in resumed, resumed
    for stem in EXPECTED:
        assert (out / "notebooks" / f"{stem}.ipynb").is_file()
        assert (out / ".done" / f"{stem}.json").is_file()


def test_series_writes_results_and_report(smoke_run):
    out, _, _ = smoke_run
    for stem in EXPECTED[2:6]:
        doc = results.read_json(out / stem / "metrics.json")
        assert doc["profile"] == "smoke" and doc["provenance"]["versions"]
    for stem in ("03_resnet50", "04_inception_v4"):
        assert (out / stem / "predictions.csv").is_file() and (out / stem / "history.csv").is_file()
    report = (out / "08_comparison" / "report.md").read_text()
    for heading in ("Table I", "Table 2", "Table 5", "differ from the papers"):
        assert heading in report
    for png in ("all_training_curves", "pred_vs_true_all", "bland_altman_all", "error_by_group"):
        assert (out / "08_comparison" / f"{png}.png").stat().st_size > 1000
    # Notebook 07, beyond the papers: its files, and the report marks it in tables and figures.
    beyond = out / "07_beyond"
    for name in (
        "ablation.csv",
        "ensemble.json",
        "crop_boxes.csv",
        "gradcam.png",
        "predictions.csv",
    ):
        assert (beyond / name).is_file(), name
    assert "Beyond the papers" in report and "07 ensemble (beyond the papers)" in report
    assert "paired comparisons on the same test images" in report
    # what the weights, correction and intervals were fitted on: validation images, no test id
    fitted_on = results.read_csv(beyond / "validation_predictions.csv")
    tested_on = results.read_csv(beyond / "predictions.csv")
    assert {"id", "true", "predicted", "male"} <= set(fitted_on.columns) and len(fitted_on) > 0
    assert not set(fitted_on["id"].astype(str)) & set(tested_on["id"].astype(str))
    ablation = results.read_csv(beyond / "ablation.csv")
    assert {"mae_low", "mae_high", "vs_previous", "verdict"} <= set(ablation.columns)
    assert "The test labels each score was computed against" in report
    summary = reporting.summary_table(reporting.build(out))
    assert "07 ensemble (beyond the papers)" in set(summary["model"])
    # the data-scaling step (one subset at the smoke profile, then the full training set)
    curve = results.read_csv(beyond / "data_scaling.csv")
    assert list(curve["train_images"])[0] == 20 and len(curve) == 2
    assert (curve["test_mae_low"] <= curve["test_mae"]).all()
    assert (beyond / "data_scaling.png").stat().st_size > 1000
    assert "against the number of training images" in report
    # every model on one benchmark, in the report and the summary
    assert "Every model on one benchmark" in report
    assert "Every model on the official test table" in (out / "summary.md").read_text()
    assert (out / "official_test.csv").is_file()


def _ordered(ci: dict) -> bool:
    return all(ci[k]["low"] <= ci[k]["value"] <= ci[k]["high"] for k in ("mae", "rmse"))


def test_every_test_metric_carries_its_interval(smoke_run):
    """Every metrics.json with test metrics holds their bootstrap intervals beside them."""
    out, _, _ = smoke_run
    for stem in ("03_resnet50", "04_inception_v4", "07_beyond"):
        m = results.read_json(out / stem / "metrics.json")["metrics"]
        assert _ordered(m["intervals"]) and m["intervals"]["n"] == m["n_test"], stem
    m06 = results.read_json(out / "06_ae_bonet" / "metrics.json")["metrics"]
    assert m06["models"] and all(_ordered(mm["intervals"]) for mm in m06["models"].values())
    rungs = results.read_json(out / "07_beyond" / "metrics.json")["metrics"]["rungs"]
    assert all(_ordered(r["intervals"]) and _ordered(r["intervals_tta"]) for r in rungs.values())


def test_report_numbers_come_from_the_result_files(smoke_run, tmp_path):
    out, _, _ = smoke_run
    rep = reporting.build(out)
    doc = results.read_json(out / "03_resnet50" / "metrics.json")
    t1 = rep.tables["table1"]
    row = t1[(t1["model"] == "ResNet-50 (GELU)") & (t1["metric"] == "RMSE (months)")].iloc[0]
    assert row["ours"] == pytest.approx(doc["metrics"]["test"]["rmse"], rel=1e-3)
    assert row["paper (reference)"] == 17.85
    # Change a result file: the report changes with it.
    copy = tmp_path / "run"
    subprocess.run(["cp", "-r", str(out), str(copy)], check=True)
    doc["metrics"]["test"]["rmse"] = 123.456
    results.write_json(copy / "03_resnet50" / "metrics.json", doc)
    m6 = results.read_json(copy / "06_ae_bonet" / "metrics.json")
    m6["metrics"]["models"]["ae_bonet"]["test"]["mae"] = 77.7777
    results.write_json(copy / "06_ae_bonet" / "metrics.json", m6)
    text = reporting.write(reporting.build(copy), copy / "08_comparison").read_text()
    assert "123.456" in text and "77.78" in text
    assert str(round(doc["metrics"]["test"]["mae"], 4)) in text


def test_report_names_missing_results(tmp_path):
    rep = reporting.build(tmp_path)
    assert any("03_resnet50/metrics.json" in m for m in rep.missing)
    text = reporting.write(rep, tmp_path / "08").read_text()
    assert "Missing results" in text


def test_failing_notebook_stops_the_series_and_is_named(tmp_path, tiny_dataset):
    # 06 without 05's encoder: the notebook fails, the series stops and says where to look.
    out = tmp_path / "out"
    res = _run_all(out, "--only", "06-", "--data", str(tiny_dataset), timeout=300)
    assert res.returncode == 1
    assert "06_ae_bonet: FAILED" in res.stderr and "encoder.weights.h5" in res.stderr
    assert "05_autoencoder_pretraining" in res.stderr
    assert (out / "notebooks" / "06_ae_bonet.ipynb").is_file() and (
        out / "logs" / "06_ae_bonet.log"
    ).is_file()
    assert "08_comparison: running" not in res.stdout  # stopped at the first failure
    table = {r["notebook"]: r["status"] for r in summary.rows(out, EXPECTED, {})}
    assert table["08_comparison"] == "not run"
    row = next(line for line in res.stdout.splitlines() if line.startswith("  06_ae_bonet"))
    assert row.split()[1] == "FAILED"  # the summary closes a failed run too
    # the failed notebook's page shows where it stopped, linked from the index
    assert "encoder.weights.h5" in (out / "notebooks" / "06_ae_bonet.html").read_text()
    assert 'href="notebooks/06_ae_bonet.html"' in (out / "index.html").read_text()


def test_bad_data_folder_is_refused(tmp_path):
    res = _run_all(tmp_path / "out", "--only", "03", "--data", str(tmp_path / "nope"), timeout=120)
    assert res.returncode != 0 and "no such folder" in res.stderr


def _execute_like_jupyterlab(name: str, env: dict, timeout: int = 600) -> None:
    """Run a notebook as JupyterLab does: kernel started in notebooks/, no injected parameters."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT / "notebooks")}},
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_eda.ipynb", "02_preprocessing.ipynb"])
def test_notebook_runs_as_in_jupyterlab(name, tmp_path):
    # Output goes to a temporary folder through the environment, not through parameters.
    _execute_like_jupyterlab(name, {"BONEAGE_OUTPUT_DIR": str(tmp_path)})
    assert (tmp_path / Path(name).stem / "config.json").is_file()


@pytest.mark.real
@pytest.mark.slow
def test_eda_and_preprocessing_on_the_real_sample(tmp_path, shared_dir):
    sample = shared_dir / "data" / "rsna-sample"
    res = _run_all(tmp_path, "--only", "01-02", "--data", str(sample), timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    cfg = json.loads((tmp_path / "01_eda" / "config.json").read_text())
    assert Path(cfg["data_dir"]) == sample.resolve()
    assert (tmp_path / "splits" / "official.csv").is_file()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
