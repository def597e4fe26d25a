"""The reproduction report: tables and figures built only from the result files of one run.

Notebook 08 calls :func:`build` and :func:`write`. Nothing here reads another kernel's state: every
number comes from ``<output_dir>/NN_name/metrics.json``, ``history*.csv`` or ``predictions*.csv``
(names in :mod:`nblib.core.runfiles`), every table is computed by :mod:`nblib.report.tables` (the functions the
notebooks use), and every paper number comes from :mod:`nblib.report.reference`, labelled as such.

Every result file is checked as it is read: a damaged one (not JSON, a metric that is not a
number, a prediction table cut short or with the wrong row count) stops the report with a
:class:`ResultError` naming the file and what is wrong, since a report built from it would
show wrong numbers that look right. ``null`` in ``metrics.json`` is how a NaN is stored (a
diverged model) and is shown as "-" and named in the differences section.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nblib.core import config, results, runfiles
from nblib.report import claims, leaderboard, plots, reference, tables
from nblib.train import statistics

PAPER1_MODELS = {
    stem: (key, tables.PAPER1_LABELS[key]) for key, stem in runfiles.PAPER1_DIRS.items()
}
AE_DIR, BONET_DIR = runfiles.AUTOENCODER_DIR, runfiles.BONET_DIR
BEYOND = "07 ensemble (beyond the papers)"  # how the report names notebook 07's best model
DEVIATIONS = "training settings unlike the papers'"  # a protocol-table column
ResultError = results.ResultError
PREDICTION_COLUMNS = ["id", "true", "predicted", "male", "split"]
TEST_METRICS = ("loss", "rmse", "mape", "r2", "mae")
GROUP_COLUMNS = ["model", "group", "n", "MAE"]  # of tables.error_by_group: the report shows MAE
MEAN_PREDICTOR = "predicting the training mean"
PAIRED_VERDICTS = ("better", "worse", "no difference shown")  # of statistics.verdict
# The paired bootstraps' seed: that of the intervals the notebooks stored
# (nblib.train.evaluation.BOOTSTRAP_SEED, not imported: the report needs no Keras).
BOOTSTRAP_SEED = 0
INTERVAL_KEYS = ("mae", "rmse", "r2", "mean_predictor_mae", "ratio_to_mean_predictor")
LEADERBOARD_TITLE = (
    "Every model on one benchmark: the official test table (RSNA's test-200 on its data)"
)
TITLES = {
    "claims": "Claims: each paper's statements against this run, with a verdict by a stated rule",
    "table1": "Table I (paper 1): test metrics, paper vs ours",
    "table1_protocol": "Protocol of each paper-1 model",
    "table2": "Table 2 (paper 2): autoencoder pretraining stages, paper vs ours",
    "table4": "Table 4 (paper 2): AE-BoNet against related work (MAE, months)",
    "table5": "Table 5 (paper 2): AE-BoNet, its random-init ablation and ImageNet-style baselines",
    "table5_protocol": "Protocol of AE-BoNet and the baselines",
    "beyond": "Beyond the papers (notebook 07, in neither paper): each ingredient added one at a time",
    "comparisons": "Test MAE with its 95% interval, and paired comparisons on the same test images",
    "test_labels": "The test labels each score was computed against",
    "error_by_group": "Test MAE by age band and sex",
}


@dataclasses.dataclass
class Report:
    """Tables (DataFrames), the predictions of every model, their histories, and what was missing."""

    output_dir: Path
    tables: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    predictions: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    histories: dict[str, pd.DataFrame] = dataclasses.field(default_factory=dict)
    missing: list[str] = dataclasses.field(default_factory=list)
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    # metrics.json's test intervals by model (names as in ``predictions``), where stored
    intervals: dict[str, dict] = dataclasses.field(default_factory=dict)
    # paired bootstraps (statistics.paired, with "model" and "other" names) the text reads
    comparisons: list[dict] = dataclasses.field(default_factory=list)


def _damaged(path: Path, what: str) -> ResultError:
    return ResultError(
        f"Result file {path} is damaged: {what}. Run notebook {path.parent.name} again to "
        "write it anew (the report is not built from damaged results)."
    )


def _number(path: Path, where: str, value: Any, required: bool = False) -> None:
    """Refuse a metric that is not a number (null, a stored NaN, is allowed)."""
    if value is None:
        if required:
            raise _damaged(path, f"{where} is missing")
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _damaged(path, f"{where} is {value!r}, not a number")


def _section(path: Path, where: str, value: Any, kind: type, required: bool = True) -> Any:
    if value is None and not required:
        return kind()
    if not isinstance(value, kind):
        raise _damaged(path, f"{where} is missing or not a {'list' if kind is list else 'mapping'}")
    return value


def _check_intervals(path: Path, where: str, ci: Any) -> None:
    """An ``intervals`` section where present (older runs have none): bounds must be numbers."""
    if ci is None:
        return
    ci = _section(path, where, ci, dict)
    for key in INTERVAL_KEYS:
        if key in ci:
            part = _section(path, f"{where}.{key}", ci[key], dict)
            for k in ("value", "low", "high"):
                _number(path, f"{where}.{key}.{k}", part.get(k))
    _number(path, f"{where}.train_mean", ci.get("train_mean"))


def check_metrics(path: Path, doc: Any) -> dict[str, Any]:
    """Check the numbers the report reads from one notebook's ``metrics.json``; return ``doc``."""
    stem = path.parent.name
    if not isinstance(doc, dict):
        raise _damaged(path, "it holds no JSON object")
    m = _section(path, "'metrics'", doc.get("metrics"), dict)
    _section(path, "'params'", doc.get("params"), dict, required=False)
    for k in ("image_size", "width"):
        _number(path, f"params.{k}", (doc.get("params") or {}).get(k))
    if stem in PAPER1_MODELS:
        test = _section(path, "metrics.test", m.get("test"), dict)
        for k in TEST_METRICS:
            if k not in test:
                raise _damaged(path, f"metrics.test.{k} is missing")
            _number(path, f"metrics.test.{k}", test[k])
        mean = _section(path, "metrics.mean_predictor", m.get("mean_predictor"), dict, False)
        for k in TEST_METRICS:
            _number(path, f"metrics.mean_predictor.{k}", mean.get(k))
        for k in ("epochs_run", "train_seconds", "n_train", "n_val", "n_test"):
            _number(path, f"metrics.{k}", m.get(k))
        _check_intervals(path, "metrics.intervals", m.get("intervals"))
    elif stem == AE_DIR:
        stages = _section(path, "metrics.stages", m.get("stages"), list, required=False)
        for i, st in enumerate(stages):
            st = _section(path, f"metrics.stages[{i}]", st, dict)
            for k in ("epochs", "loss", "accuracy", "val_loss", "psnr", "ssim"):
                _number(path, f"metrics.stages[{i}].{k}", st.get(k))
    elif stem == BONET_DIR:
        models = _section(path, "metrics.models", m.get("models"), dict, required=False)
        for key, mm in models.items():
            mm = _section(path, f"metrics.models.{key}", mm, dict)
            test = _section(path, f"metrics.models.{key}.test", mm.get("test"), dict)
            for k in ("mae", "mse", "rmse", "r2"):
                _number(path, f"metrics.models.{key}.test.{k}", test.get(k), required=k == "mae")
            for k in ("epochs_run", "train_seconds", "image_size"):
                _number(path, f"metrics.models.{key}.{k}", mm.get(k))
            _check_intervals(path, f"metrics.models.{key}.intervals", mm.get("intervals"))
        mean = _section(path, "metrics.mean_predictor", m.get("mean_predictor"), dict, False)
        for k in ("mae", "mse", "rmse", "r2"):
            _number(path, f"metrics.mean_predictor.{k}", mean.get(k))
    elif stem == runfiles.BEYOND_DIR:
        _check_intervals(path, "metrics.intervals", m.get("intervals"))
    return doc


def _metrics(output_dir: Path, stem: str, missing: list[str]) -> dict[str, Any] | None:
    path = output_dir / stem / runfiles.METRICS
    if not path.is_file():
        missing.append(f"{stem}/{runfiles.METRICS} (run notebook {stem} first)")
        return None
    return check_metrics(path, results.read_json(path))


def read_predictions(path: Path | str, n_test: Any = None) -> pd.DataFrame:
    """A ``predictions*.csv`` checked: its columns, numbers in every row, ids as strings, and
    ``n_test`` rows where the notebook recorded that count."""
    path = Path(path)
    df = results.read_csv(path, dtype={"id": str, "split": str})
    lacking = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if lacking:
        raise _damaged(path, f"column(s) {', '.join(lacking)} missing (has {list(df.columns)})")
    if df.empty:
        raise _damaged(path, "it has a header but no rows")
    for col in ("true", "predicted"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero(~np.isfinite(values.to_numpy(float)))
        if len(bad):
            lines = ", ".join(str(i + 2) for i in bad[:5])
            raise _damaged(
                path,
                f"{len(bad)} row(s) have no numeric '{col}' value (line(s) {lines}"
                f"{', ...' if len(bad) > 5 else ''})",
            )
        df[col] = values.astype(float)
    if df["id"].isna().any():
        raise _damaged(path, f"{int(df['id'].isna().sum())} row(s) have no id")
    if n_test is not None and len(df) != int(n_test):
        raise _damaged(
            path, f"it holds {len(df)} rows but metrics.json records n_test = {int(n_test)}"
        )
    return df


def read_history(path: Path | str) -> pd.DataFrame:
    """A ``history*.csv`` checked: a ``loss`` column and numbers (or empty cells) throughout."""
    path = Path(path)
    df = results.read_csv(path)
    if "loss" not in df.columns:
        raise _damaged(path, f"no 'loss' column (has {list(df.columns)})")
    text = [c for c in df.columns if df[c].dtype == object or str(df[c].dtype) == "str"]
    if text:
        raise _damaged(path, f"column(s) {', '.join(text)} hold text where numbers belong")
    return df


def deviations(params: dict[str, Any]) -> str:
    """The training settings of a run that differ from the papers' (or "none")."""
    out = []
    for key, paper in reference.PAPER_TRAINING.items():
        ours = params.get(key, paper)
        if ours != paper and not (isinstance(paper, float) and float(ours) == paper):
            out.append(f"{key} {ours} (papers: {paper})")
    return "; ".join(out) or "none"


def _hardware(doc: dict[str, Any]) -> dict[str, Any]:
    """The protocol tables' hardware and backend columns, from ``metrics.json``'s provenance."""
    hw = doc.get("provenance", {}).get("hardware", {})
    return {
        "hardware": ", ".join(hw.get("gpus") or []) or f"CPU x{hw.get('cpus', '?')}",
        "backend": hw.get("backend", "tensorflow"),
    }


def _protocol(doc: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    p = doc.get("params", {})
    return {
        "data": Path(str(p.get("data_dir", "?"))).name,
        "split": p.get("split"),
        "n train/val/test": f"{m.get('n_train', '?')}/{m.get('n_val', '?')}/{m.get('n_test', '?')}",
        "image size": p.get("image_size"),
        "width": p.get("width"),
        "epochs run": m.get("epochs_run"),
        "train time (s)": tables.rounded(m.get("train_seconds"), 0),
        **_hardware(doc),
        "deterministic": p.get("deterministic"),
        DEVIATIONS: deviations(p),
    }


def _read_csvs(folder: Path, name: str, n_test: Any = None) -> dict[str, pd.DataFrame]:
    """The history or predictions files of a notebook by tag (``runfiles.tagged_files``), each
    checked as it is read (``n_test``, when given, is the untagged predictions' row count)."""
    out = {}
    for tag, path in runfiles.tagged_files(folder, name).items():
        if name == runfiles.PREDICTIONS:
            out[tag] = read_predictions(path, n_test if tag == "" else None)
        else:
            out[tag] = read_history(path)
    return out


def _paper1(report: Report) -> None:
    """Table I and its protocol table; each paper-1 model's predictions and history."""
    rows, protocols = [], []
    for stem, (key, label) in PAPER1_MODELS.items():
        doc = _metrics(report.output_dir, stem, report.missing)
        if doc is None:
            continue
        m = doc["metrics"]
        report.sources[label] = f"{stem}/{runfiles.METRICS}"
        rows.append(tables.table1(key, m))
        protocols.append(
            {
                "model": label,
                **_protocol(doc, m),
                "paper protocol": f"RSNA official 12,611/1,425/200, 256 px, width 1, "
                f"{reference.PAPER1_EPOCHS[key]} epochs",
            }
        )
        folder = report.output_dir / stem
        for tag, df in _read_csvs(folder, runfiles.PREDICTIONS, m.get("n_test")).items():
            report.predictions[label if not tag else f"{label} [{tag}]"] = df
        if isinstance(m.get("intervals"), dict):
            report.intervals[label] = m["intervals"]
        for tag, df in _read_csvs(folder, runfiles.HISTORY).items():
            report.histories[label if not tag else f"{label} [{tag}]"] = df
    if rows:
        report.tables["table1"] = pd.concat(rows, ignore_index=True)
        report.tables["table1_protocol"] = pd.DataFrame(protocols)


def _autoencoder(report: Report) -> None:
    """Table 2 and the autoencoder's history."""
    doc = _metrics(report.output_dir, AE_DIR, report.missing)
    if doc is None:
        return
    report.sources["autoencoder"] = f"{AE_DIR}/{runfiles.METRICS}"
    report.tables["table2"] = tables.table2(doc["metrics"].get("stages", []))
    for tag, df in _read_csvs(report.output_dir / AE_DIR, runfiles.HISTORY).items():
        report.histories["autoencoder" if not tag else f"autoencoder [{tag}]"] = df


def _bonet_protocol(doc: dict[str, Any]) -> pd.DataFrame:
    p = doc.get("params", {})
    left_out = [b for b in reference.PAPER2_BASELINES if b not in (p.get("baselines") or [])]
    return pd.DataFrame(
        [
            {
                "image size": p.get("image_size"),
                "width": p.get("width"),
                "epochs": p.get("epochs"),
                "baseline epochs": p.get("baseline_epochs"),
                "baselines left out": ", ".join(left_out) or "none",
                **_hardware(doc),
                DEVIATIONS: deviations(p),
            }
        ]
    )


def _bonet_name(tag: str, models: dict[str, Any]) -> str:
    """The report's name of notebook 06's model ``tag`` (an untagged file is AE-BoNet's)."""
    if tag in ("", "ae_bonet"):
        return "AE-BoNet"
    if tag == "random_init":
        return f"AE-BoNet [{tag}]"
    return models.get(tag, {}).get("label", tag)


def _bonet(report: Report) -> None:
    """Tables 4 and 5 with their protocol; every model's predictions and history."""
    doc = _metrics(report.output_dir, BONET_DIR, report.missing)
    if doc is None:
        return
    models = doc["metrics"].get("models", {})
    report.sources["AE-BoNet"] = f"{BONET_DIR}/{runfiles.METRICS}"
    report.tables["table5_protocol"] = _bonet_protocol(doc)
    report.tables["table5"] = tables.table5(models, doc["metrics"].get("mean_predictor", {}))
    report.tables["table4"] = tables.table4(models)
    folder = report.output_dir / BONET_DIR
    for tag, df in _read_csvs(folder, runfiles.PREDICTIONS).items():
        report.predictions[_bonet_name(tag, models)] = df
        ci = models.get(tag or "ae_bonet", {}).get("intervals")
        if isinstance(ci, dict):
            report.intervals[_bonet_name(tag, models)] = ci
    for tag, df in _read_csvs(folder, runfiles.HISTORY).items():
        report.histories[_bonet_name(tag, models)] = df


def _beyond(report: Report) -> None:
    """Notebook 07's ablation table; its ensemble's predictions and its rungs' histories, each
    named as beyond the papers. Optional: a run without 07 has no such section."""
    folder = report.output_dir / runfiles.BEYOND_DIR
    if not (folder / runfiles.METRICS).is_file():
        return
    doc = _metrics(report.output_dir, runfiles.BEYOND_DIR, report.missing)
    if doc is None:
        return
    m = doc["metrics"]
    report.sources[BEYOND] = f"{runfiles.BEYOND_DIR}/{runfiles.METRICS}"
    report.tables["beyond"] = results.read_csv(folder / runfiles.ABLATION)
    report.predictions[BEYOND] = read_predictions(folder / runfiles.PREDICTIONS, m.get("n_test"))
    if isinstance(m.get("intervals"), dict):
        report.intervals[BEYOND] = m["intervals"]
    for tag, df in _read_csvs(folder, runfiles.HISTORY).items():
        report.histories[f"07 {tag} (beyond the papers)"] = df


def _test_labels(report: Report) -> None:
    """For every model: how many test labels, whole or fractional months, and their fingerprint
    (:func:`nblib.data.label_version`), so that a score can be matched to its label table."""
    from nblib.data import splitting

    rows = []
    for name, pred in report.predictions.items():
        version = splitting.label_version(pred.rename(columns={"true": "boneage"}))
        rows.append({"model": name, **version})
    if rows:
        report.tables["test_labels"] = pd.DataFrame(rows)


def _shared_images(a: pd.DataFrame, b: pd.DataFrame) -> tuple | None:
    """True ages and both models' predictions on the test images both files hold (matched by
    id), or None where they share fewer than two images or disagree on an image's true age: not
    the same test set, so no paired comparison."""
    cols = ["id", "true", "predicted"]
    both = a[cols].merge(b[cols], on="id", suffixes=("_a", "_b"))
    if len(both) < 2 or not np.allclose(both["true_a"], both["true_b"]):
        return None
    return tuple(both[c].to_numpy(float) for c in ("true_a", "predicted_a", "predicted_b"))


def compare(model: str, other: str, true: Any, pred: Any, against: Any) -> dict | None:
    """Paired bootstrap of ``model``'s test MAE minus ``other``'s (predictions on the same images,
    or a constant such as the training mean), named; None where a prediction is not a number."""
    try:
        paired = statistics.paired(true, pred, against, seed=BOOTSTRAP_SEED)
    except ValueError:
        return None
    return {"model": model, "other": other, **paired}


def _pairs(report: Report) -> list[dict]:
    """The differences the series states, paired on the same test images: every model against
    predicting the training mean (where its metrics.json recorded that mean; older runs did
    not), and AE-BoNet from the pretrained encoder against random initialisation (notebook 06).
    Notebook 07's steps are compared in its own ablation table (``vs_previous``, ``verdict``)."""
    out = []
    for name, pred in report.predictions.items():
        train_mean = (report.intervals.get(name) or {}).get("train_mean")
        if train_mean is not None:
            out.append(compare(name, MEAN_PREDICTOR, pred["true"], pred["predicted"], train_mean))
    ae, ri = report.predictions.get("AE-BoNet"), report.predictions.get("AE-BoNet [random_init]")
    shared = _shared_images(ae, ri) if ae is not None and ri is not None else None
    if shared is not None:
        out.append(compare("AE-BoNet", "AE-BoNet [random_init]", *shared))
    return [c for c in out if c is not None]


def _mae_interval(pred: pd.DataFrame) -> str:
    """A model's test MAE with its 95% bootstrap interval, from its predictions file."""
    try:
        ci = statistics.intervals(pred["true"], pred["predicted"], seed=BOOTSTRAP_SEED)
    except ValueError:
        return "n/a"
    return statistics.fmt_interval(ci["mae"], 2)


def _comparisons(report: Report) -> None:
    """The comparisons table: every model's test MAE with its interval, and each paired
    comparison of :func:`_pairs` ("better" means the model's MAE is lower on these images)."""
    report.comparisons = _pairs(report)
    rows = []
    for name, pred in report.predictions.items():
        mae = _mae_interval(pred)
        for c in [c for c in report.comparisons if c["model"] == name] or [None]:
            rows.append(
                {
                    "model": name,
                    "test MAE (95% interval)": mae,
                    "compared with": c["other"] if c else "-",
                    "its MAE": round(c["b"], 2) if c else None,
                    "difference in MAE (95% interval)": _difference(c) if c else "-",
                    "verdict": c["verdict"] if c else "-",
                }
            )
    if rows:
        report.tables["comparisons"] = pd.DataFrame(rows)


def _difference(c: dict) -> str:
    """A paired comparison's MAE difference with its interval: ``-7.71 (-9.80 to -5.62)``."""
    return statistics.fmt(c["difference"], c["low"], c["high"], 2)


def build(output_dir: Path | str) -> Report:
    """Read a run's result files and assemble every table of the report."""
    report = Report(Path(output_dir))
    _paper1(report)
    _autoencoder(report)
    _bonet(report)
    _beyond(report)
    _comparisons(report)
    _test_labels(report)
    if report.sources:  # some notebook ran: each claim gets its verdict, "not run" included
        report.tables["claims"] = claims.build(report.output_dir)
    if report.predictions:
        report.tables["error_by_group"] = tables.error_by_group(report.predictions)[GROUP_COLUMNS]
    return report


def _loss_panel(history: pd.DataFrame, title: str, ax) -> Any:
    return plots.curve(history, "loss", title=title, log=True, ax=ax)


# The grids of panels: figure -> (Report field drawn, panel function, columns, panel size, title).
GRIDS = {
    "all_training_curves": (
        "histories",
        _loss_panel,
        3,
        (5, 3.4),
        "Training curves of every model (loss; log scale)",
    ),
    "pred_vs_true_all": (
        "predictions",
        plots.pred_vs_true,
        4,
        (3.6, 3.6),
        "Predicted vs true bone age (test set; green: 45° line)",
    ),
    "bland_altman_all": (
        "predictions",
        plots.bland_altman,
        4,
        (3.6, 3.2),
        "Bland-Altman: bias and 95% limits of agreement",
    ),
}


def figures(report: Report) -> dict[str, Any]:
    """All-curves, predicted-vs-true, Bland-Altman and error-by-group figures (matplotlib),
    composed of the notebooks' own plot functions."""
    figs = {}
    for name, (field, draw, cols, panel, title) in GRIDS.items():
        items = getattr(report, field)
        if items:
            figs[name] = plots.grid(items, draw, cols=cols, panel=panel, title=title)
    if "error_by_group" in report.tables:
        figs["error_by_group"] = plots.error_by_group(
            report.tables["error_by_group"], title="Test error by age band and by sex"
        )
    return figs


def _md_table(df: pd.DataFrame) -> str:
    """A Markdown table without needing the optional tabulate package."""
    cols = list(df.columns)

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "-"
        if isinstance(v, float):
            return f"{v:.6g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def _protocol_notes(report: Report) -> list[str]:
    """What each model was trained on, against the paper's protocol."""
    notes = []
    t1 = report.tables.get("table1_protocol")
    if t1 is not None:
        for d in t1.to_dict("records"):
            notes.append(
                f"{d['model']}: trained on '{d['data']}' ({d['n train/val/test']} images) at "
                f"{d['image size']} px, width {d['width']}, for {d['epochs run']} epochs on "
                f"{d['hardware']}; the paper used {d['paper protocol']}. Training settings unlike "
                f"the paper's: {d[DEVIATIONS]}. Numbers from a "
                "scaled model on different data are a check that the pipeline learns, not a "
                "replication of the paper's figures."
            )
    t5p = report.tables.get("table5_protocol")
    if t5p is not None and not t5p.empty:
        d = t5p.to_dict("records")[0]
        notes.append(
            f"AE-BoNet and its baselines: {d['image size']} px, width {d['width']}, "
            f"{d['epochs']} epochs on {d['hardware']}; training settings unlike the paper's: "
            f"{d[DEVIATIONS]}."
        )
        if d["baselines left out"] != "none":
            notes.append(
                f"Baselines left out of this profile: {d['baselines left out']}. From scratch "
                "on a CPU they need far more than the minutes a scaled profile allows (run for "
                "5 epochs on 400 real images at 128 px they stayed at 0.95-1.03x the mean "
                "predictor); the paper profile trains all four."
            )
    return notes


def _table1_notes(report: Report) -> list[str]:
    """Each paper-1 model's test RMSE against the paper's and the mean predictor's."""
    notes = []
    t = report.tables.get("table1")
    if t is None:
        return notes
    for model, g in t.groupby("model", sort=False):
        r = g.set_index("metric")
        try:
            ours, paper = (
                r.loc["RMSE (months)", "ours"],
                r.loc["RMSE (months)", "paper (reference)"],
            )
            mean = r.loc["RMSE (months)", "ours, mean predictor"]
            if pd.isna(ours) or pd.isna(mean):
                raise ValueError("a stored NaN")
            notes.append(
                f"{model}: test RMSE {ours:.2f} months against the paper's {paper:.2f} "
                f"(predicting the training mean gives {mean:.2f})."
                + _claim((report.intervals.get(model) or {}).get("rmse"), paper)
            )
        except (KeyError, TypeError, ValueError):
            notes.append(
                f"{model}: test RMSE (or the mean predictor's) is not a number (null, a "
                "stored NaN, in its metrics.json: did training diverge?), so it cannot be "
                "compared with the paper's."
            )
    return notes


CLAIMS_INTRO = (
    "Each statement is one the paper makes (where: its table or section); 'ours' is read from "
    "this run's result files. The verdicts follow these rules:"
)
CLAIMS = {  # statistics.claim_verdict of a paper's number against our interval, in words
    "consistent": "the paper's value lies inside it, so no difference from the paper is shown",
    "ours worse": "the paper's value lies below it, so ours is worse on this test set",
    "ours better": "the paper's value lies above it, so ours is better on this test set",
}


def _claim(part: Any, paper: Any) -> str:
    """A sentence on a paper's number against our 95% interval of the same metric (its
    :func:`statistics.claim_verdict` in words); empty where there is none to read (an older
    run, no paper value, a NaN)."""
    try:
        verdict = statistics.claim_verdict(paper, part["low"], part["high"])
    except (KeyError, TypeError, ValueError):
        return ""
    ours = statistics.fmt(part["value"], part["low"], part["high"], 2)
    return f" Our value with its 95% interval is {ours}: {CLAIMS[verdict]}."


MEAN_VERDICTS = {  # a model against predicting the training mean, from the model's side
    "better": "the interval lies below 0, so the model learned more than the average age",
    "worse": "the interval lies above 0, so the model does worse than always guessing the "
    "average age",
    "no difference shown": "the interval includes 0, so this test set does not show that the "
    "model learned more than the average age",
}


def _mean_predictor_notes(report: Report) -> list[str]:
    """Each model against predicting the training mean: the paired difference and its verdict."""
    return [
        f"{c['model']} against {MEAN_PREDICTOR} (MAE {c['b']:.2f} months): a paired difference "
        f"in test MAE of {_difference(c)} months over {c['n']} test images; "
        f"{MEAN_VERDICTS[c['verdict']]}."
        for c in report.comparisons
        if c["other"] == MEAN_PREDICTOR
    ]


PRETRAINING = {  # AE-BoNet pretrained against random init: (opening, reading of the interval)
    "better": ("Pretraining helped here", "its paired 95% interval lies below 0"),
    "worse": ("Pretraining hurt here", "its paired 95% interval lies above 0"),
    "no difference shown": (
        "No difference from pretraining is shown here",
        "its paired 95% interval includes 0, so this test set cannot tell the two apart",
    ),
}


def _pretraining_note(report: Report, a: float, b: float) -> str:
    """What pretraining bought, said only as far as the paired verdict supports it."""
    ref = "(paper: 9.3 at 256 px with 900 pretraining epochs on 10,088 RSNA images)"
    pair = next((c for c in report.comparisons if c["other"] == "AE-BoNet [random_init]"), None)
    if pair is None:
        return (
            f"AE-BoNet test MAE {a:.2f} months from the pretrained encoder vs {b:.2f} from "
            "random initialisation; without both models' predictions on the same test images "
            f"there is no paired comparison, so no difference is claimed {ref}."
        )
    opening, reading = PRETRAINING[pair["verdict"]]
    return (
        f"{opening}: AE-BoNet test MAE {a:.2f} months from the pretrained encoder vs {b:.2f} "
        f"from random initialisation, a difference of {_difference(pair)} months ({reading}) "
        f"{ref}."
    )


def _paper2_notes(report: Report) -> list[str]:
    """What pretraining bought (AE-BoNet against its random-init ablation), and Table 2's stages."""
    notes = []
    t5 = report.tables.get("table5")
    if t5 is not None and not t5.empty:
        ae = t5[t5["init"] == "autoencoder"]
        ri = t5[(t5["init"] == "random") & t5["model"].str.contains("AE-BoNet")]
        if not ae.empty and not ri.empty:
            notes.append(_pretraining_note(report, ae["our MAE"].iloc[0], ri["our MAE"].iloc[0]))
    t2 = report.tables.get("table2")
    if t2 is not None and not t2.empty:
        notes.append(
            f"Autoencoder: {len(t2)} stage(s) of {', '.join(str(e) for e in t2['our epochs'])} "
            "epochs against the paper's 300/200/100/150/150; our 'accuracy' is Keras 2's "
            "binary accuracy at threshold 0.5, the metric the paper's code most likely logged, "
            "which measures thresholded pixels rather than reconstruction quality (PSNR/SSIM do)."
        )
    return notes


def _beyond_notes(report: Report) -> list[str]:
    """What notebook 07 is, and which RSNA test-200 labels its number would be compared with."""
    t = report.tables.get("beyond")
    if t is None or t.empty:
        return []
    best = t.iloc[-1]
    mae = statistics.fmt(best["test MAE (months)"], best.get("mae_low"), best.get("mae_high"), 2)
    return [
        f"Beyond the papers: notebook 07's ensemble reaches test MAE "
        f"{mae} months ({best['x mean predictor']:.2f}x the mean "
        "predictor) with ingredients neither paper used (sex input, contrast normalisation, "
        "hand crop, augmentation, a robust loss, test-time augmentation, an ensemble); it is not "
        "a reproduction and is marked as such in every table and figure.",
        "Test labels: RSNA's test-200 ground truth circulated in two versions, and published "
        "test-200 numbers mix them. The official table read here holds fractional months "
        "('Ground truth bone age (months)', e.g. 168.93); the table 'The test labels each "
        "score was computed against' names, for every model, whether its labels were whole or "
        "fractional months and a fingerprint of the (id, months) pairs, so a test-200 score from "
        "this series can be matched to the version it used.",
        *_ladder_notes(t),
    ]


def _ladder_notes(t: pd.DataFrame) -> list[str]:
    """Notebook 07's steps, each against the step before it, with their paired verdicts (the
    ablation table's ``vs_previous`` and ``verdict``; an older table without them gives none)."""
    if "verdict" not in t.columns:
        return []
    steps = t[t["verdict"].isin(list(PAIRED_VERDICTS))].to_dict("records")
    if not steps:
        return []
    said = "; ".join(f"{r['model']} {r['vs_previous']}, {r['verdict']}" for r in steps)
    return [
        "Notebook 07's ladder, each step against the step before it (paired bootstrap of the "
        "test MAE difference in months, on the same test images; below 0 is a gain): "
        f"{said}. Only a step marked 'better' is a gain this test set supports; 'no difference "
        "shown' means the test set cannot tell the two apart, not that the ingredient does "
        "nothing."
    ]


def differences(report: Report) -> list[str]:
    """Plain-language notes on where and why our numbers differ from the papers'."""
    return (
        _protocol_notes(report)
        + _table1_notes(report)
        + _mean_predictor_notes(report)
        + _paper2_notes(report)
        + _beyond_notes(report)
    )


def write(report: Report, out_dir: Path | str | None = None) -> Path:
    """Write tables (CSV), figures (PNG) and ``report.md`` into ``out_dir``; return the report path."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir) if out_dir else report.output_dir / runfiles.REPORT_DIR
    for name, df in report.tables.items():
        results.write_csv(out_dir / runfiles.table(name), df)
    figs = figures(report)
    for name, fig in figs.items():
        results.save_figure(fig, out_dir / runfiles.figure(name))
        plt.close(fig)
    lines = [
        "# Reproduction report",
        "",
        f"Run: `{config.shown(report.output_dir)}`; written {time.strftime('%Y-%m-%d %H:%M')}. Every 'ours' number "
        "below is read from that run's result files (listed at the end); columns marked "
        "'(reference)' are the papers' published values.",
        "",
    ]
    if report.missing:
        lines += ["**Missing results** (the report covers only what exists):", ""]
        lines += [f"- {m}" for m in report.missing] + [""]
    board = leaderboard.entries(report.output_dir)
    if board:
        lines += [f"## {LEADERBOARD_TITLE}", "", leaderboard.markdown(board)]
    lines += _scaling_section(report.output_dir)
    for name in TITLES:
        if name in report.tables:
            lines += [f"## {TITLES[name]}", "", _md_table(report.tables[name]), ""]
            if name == "claims":
                lines += [CLAIMS_INTRO, "", *claims.rules_markdown(), ""]
    if figs:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({runfiles.figure(name)})" for name in figs] + [""]
    lines += ["## Where our numbers differ from the papers', and why", ""]
    lines += [f"- {n}" for n in differences(report)] or ["- No results to compare yet."]
    lines += ["", "## Sources", ""] + [f"- {k}: `{v}`" for k, v in report.sources.items()]
    return results.write_text(out_dir / runfiles.REPORT, "\n".join(lines) + "\n")


def _scaling_section(output_dir: Path) -> list[str]:
    """07's data-scaling curve (test MAE against training-set size), where the run made one."""
    stem = Path(runfiles.BEYOND_DIR) / runfiles.DATA_SCALING
    csv = output_dir / stem.with_suffix(".csv")
    if not csv.is_file():
        return []
    table = results.read_csv(csv)
    return [
        "## Test MAE against the number of training images (notebook 07's best recipe)",
        "",
        _md_table(table.round(2)),
        "",
        f"![data scaling](../{stem.with_suffix('.png')})",
        "",
    ]


def _ratio(a: Any, b: Any) -> float | None:
    """``a / b``, or None where either is a stored NaN (null) or ``b`` is 0."""
    return None if a is None or not b else a / b


def summary_table(report: Report) -> pd.DataFrame:
    """One row per model: test MAE and RMSE beside the mean predictor's, epochs and training time.

    A result file missing a number the table needs raises :class:`ResultError` naming it.
    """
    try:
        return _summary_table(report)
    except KeyError as e:
        raise ResultError(
            f"A metrics.json under {report.output_dir} lacks {e} needed by the summary table; "
            "run its notebook again"
        ) from None


def _summary_row(label: str, size: Any, m: dict[str, Any], mean: dict[str, Any]) -> dict:
    """One model's row; its MAE's 95% interval where its metrics.json holds one (else empty)."""
    mae_ci = (m.get("intervals") or {}).get("mae") or {}
    return {
        "model": label,
        "image size": size,
        "test MAE": m["test"]["mae"],
        "MAE 95% low": mae_ci.get("low"),
        "MAE 95% high": mae_ci.get("high"),
        "test RMSE": m["test"]["rmse"],
        "test R^2": m["test"]["r2"],
        "mean-predictor MAE": mean["mae"],
        "MAE / mean-predictor MAE": _ratio(m["test"]["mae"], mean["mae"]),
        "epochs": m["epochs_run"],
        "train time (min)": _ratio(m["train_seconds"], 60),
    }


def _summary_table(report: Report) -> pd.DataFrame:
    rows = []
    for stem, (_, label) in PAPER1_MODELS.items():
        path = report.output_dir / stem / runfiles.METRICS
        if path.is_file():
            doc = results.read_json(path)
            m = doc["metrics"]
            rows.append(_summary_row(label, doc["params"]["image_size"], m, m["mean_predictor"]))
    path = report.output_dir / BONET_DIR / runfiles.METRICS
    if path.is_file():
        doc = results.read_json(path)["metrics"]
        for m in doc["models"].values():
            rows.append(_summary_row(m["label"], m["image_size"], m, doc["mean_predictor"]))
    path = report.output_dir / runfiles.BEYOND_DIR / runfiles.METRICS
    if path.is_file():
        doc = results.read_json(path)
        m = doc["metrics"]
        rows.append(_summary_row(BEYOND, doc["params"]["image_size"], m, m["mean_predictor"]))
    return pd.DataFrame(rows).round(3)


def main(argv: list[str] | None = None) -> int:
    """``python -m nblib.report.reporting RUN_DIR``: print the run's summary table as Markdown."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nblib.report.reporting RUN_DIR", file=sys.stderr)
        return 2
    try:
        print(_md_table(summary_table(build(args[0]))))
    except (ResultError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
