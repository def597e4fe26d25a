"""The reproduction report: tables and figures built only from the result files of one run.

Notebook 07 calls :func:`build` and :func:`write`. Nothing here reads another kernel's state: every
number comes from ``<output_dir>/NN_name/metrics.json``, ``history*.csv`` or ``predictions*.csv``,
and every paper number from :mod:`nblib.reference`, labelled as such.

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

from nblib import reference, results

PAPER1_MODELS = {
    "03_resnet50": ("resnet50", "ResNet-50 (GELU)"),
    "04_inception_v4": ("inception_v4", "Inception-V4"),
}
AE_DIR, BONET_DIR = "05_autoencoder_pretraining", "06_ae_bonet"
DEVIATIONS = "training settings unlike the papers'"  # a protocol-table column
AGE_BANDS = [(0, 2), (2, 6), (6, 10), (10, 14), (14, 100)]
ResultError = results.ResultError
PREDICTION_COLUMNS = ["id", "true", "predicted", "male", "split"]
TEST_METRICS = ("loss", "rmse", "mape", "r2", "mae")


@dataclasses.dataclass
class Report:
    """Tables (DataFrames), the predictions of every model, their histories, and what was missing."""

    output_dir: Path
    tables: dict[str, pd.DataFrame]
    predictions: dict[str, pd.DataFrame]
    histories: dict[str, pd.DataFrame]
    missing: list[str]
    sources: dict[str, str]


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
        mean = _section(path, "metrics.mean_predictor", m.get("mean_predictor"), dict, False)
        for k in ("mae", "mse", "rmse", "r2"):
            _number(path, f"metrics.mean_predictor.{k}", mean.get(k))
    return doc


def _metrics(output_dir: Path, stem: str, missing: list[str]) -> dict[str, Any] | None:
    path = output_dir / stem / "metrics.json"
    if not path.is_file():
        missing.append(f"{stem}/metrics.json (run notebook {stem} first)")
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


def _protocol(doc: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    p = doc.get("params", {})
    hw = doc.get("provenance", {}).get("hardware", {})
    device = ", ".join(hw.get("gpus") or []) or f"CPU x{hw.get('cpus', '?')}"
    return {
        "data": Path(str(p.get("data_dir", "?"))).name,
        "split": p.get("split"),
        "n train/val/test": f"{m.get('n_train', '?')}/{m.get('n_val', '?')}/{m.get('n_test', '?')}",
        "image size": p.get("image_size"),
        "width": p.get("width"),
        "epochs run": m.get("epochs_run"),
        "train time (s)": _round(m.get("train_seconds"), 0),
        "hardware": device,
        "backend": hw.get("backend", "tensorflow"),
        "deterministic": p.get("deterministic"),
        DEVIATIONS: deviations(p),
    }


def _round(v: Any, nd: int = 4) -> Any:
    if v is None:
        return None
    try:
        return round(float(v), nd)
    except (TypeError, ValueError):
        return v


def _read_csvs(folder: Path, prefix: str, n_test: Any = None) -> dict[str, pd.DataFrame]:
    """``prefix.csv`` -> key "", ``prefix_<tag>.csv`` -> key tag; each checked as it is read
    (``n_test``, when given, is the row count ``prefix.csv`` must have)."""
    out = {}
    for path in sorted(folder.glob(f"{prefix}*.csv")):
        tag = path.stem[len(prefix) :].lstrip("_")
        if prefix == "predictions":
            out[tag] = read_predictions(path, n_test if tag == "" else None)
        else:
            out[tag] = read_history(path)
    return out


def build(output_dir: Path | str) -> Report:
    """Read a run's result files and assemble every table of the report."""
    output_dir = Path(output_dir)
    missing: list[str] = []
    tables: dict[str, pd.DataFrame] = {}
    predictions: dict[str, pd.DataFrame] = {}
    histories: dict[str, pd.DataFrame] = {}
    sources: dict[str, str] = {}

    # Table I: paper 1, test loss / RMSE / MAPE / R^2, paper vs ours, and each protocol.
    rows, protocols = [], []
    for stem, (key, label) in PAPER1_MODELS.items():
        doc = _metrics(output_dir, stem, missing)
        if doc is None:
            continue
        m = doc["metrics"]
        test = m["test"]
        ref = reference.PAPER1_TABLE1[key]
        sources[label] = f"{stem}/metrics.json"
        for metric, name in (
            ("loss", "loss (MSLE)"),
            ("rmse", "RMSE (months)"),
            ("mape", "MAPE (%)"),
            ("r2", "R^2 (%)"),
        ):
            ours = test.get(metric)
            if metric == "r2" and ours is not None:
                ours = 100 * float(ours)  # the paper reports R^2 as a percentage
            rows.append(
                {
                    "model": label,
                    "metric": name,
                    "paper (reference)": ref[metric],
                    "ours": _round(ours),
                    "ours, mean predictor": _round(
                        (
                            100 * m["mean_predictor"][metric]
                            if metric == "r2"
                            else m["mean_predictor"][metric]
                        )
                        if m.get("mean_predictor", {}).get(metric) is not None
                        else None
                    ),
                }
            )
        rows.append(
            {
                "model": label,
                "metric": "MAE (months)",
                "paper (reference)": None,
                "ours": _round(test.get("mae")),
                "ours, mean predictor": _round(m.get("mean_predictor", {}).get("mae")),
            }
        )
        protocols.append(
            {
                "model": label,
                **_protocol(doc, m),
                "paper protocol": f"RSNA official 12,611/1,425/200, 256 px, width 1, "
                f"{reference.PAPER1_EPOCHS[key]} epochs",
            }
        )
        folder = output_dir / stem
        for tag, df in _read_csvs(folder, "predictions", m.get("n_test")).items():
            predictions[label if not tag else f"{label} [{tag}]"] = df
        for tag, df in _read_csvs(folder, "history").items():
            histories[label if not tag else f"{label} [{tag}]"] = df
    if rows:
        tables["table1"] = pd.DataFrame(rows)
        tables["table1_protocol"] = pd.DataFrame(protocols)

    # Table 2: autoencoder stages, paper vs ours.
    doc = _metrics(output_dir, AE_DIR, missing)
    if doc is not None:
        stages = doc["metrics"].get("stages", [])
        sources["autoencoder"] = f"{AE_DIR}/metrics.json"
        rows = []
        for i, st in enumerate(stages):
            ref = reference.PAPER2_TABLE2[i] if i < len(reference.PAPER2_TABLE2) else {}
            rows.append(
                {
                    "stage": st.get("stage", i + 1),
                    "paper epochs (reference)": ref.get("epochs"),
                    "paper MSE (reference)": ref.get("loss"),
                    "paper accuracy (reference)": ref.get("accuracy"),
                    "our epochs": st.get("epochs"),
                    "our MSE": _round(st.get("loss"), 6),
                    "our accuracy": _round(st.get("accuracy")),
                    "our val MSE": _round(st.get("val_loss"), 6),
                    "our val PSNR (dB)": _round(st.get("psnr"), 2),
                    "our val SSIM": _round(st.get("ssim")),
                }
            )
        tables["table2"] = pd.DataFrame(rows)
        for tag, df in _read_csvs(output_dir / AE_DIR, "history").items():
            histories["autoencoder" if not tag else f"autoencoder [{tag}]"] = df

    # Tables 4 and 5: AE-BoNet, its random-init ablation and the baselines.
    doc = _metrics(output_dir, BONET_DIR, missing)
    if doc is not None:
        models = doc["metrics"].get("models", {})
        mean = doc["metrics"].get("mean_predictor", {})
        sources["AE-BoNet"] = f"{BONET_DIR}/metrics.json"
        p = doc.get("params", {})
        hw = doc.get("provenance", {}).get("hardware", {})
        left_out = [b for b in reference.PAPER2_BASELINES if b not in (p.get("baselines") or [])]
        tables["table5_protocol"] = pd.DataFrame(
            [
                {
                    "image size": p.get("image_size"),
                    "width": p.get("width"),
                    "epochs": p.get("epochs"),
                    "baseline epochs": p.get("baseline_epochs"),
                    "baselines left out": ", ".join(left_out) or "none",
                    "hardware": ", ".join(hw.get("gpus") or []) or f"CPU x{hw.get('cpus', '?')}",
                    "backend": hw.get("backend", "tensorflow"),
                    DEVIATIONS: deviations(p),
                }
            ]
        )
        rows = []
        for key, m in models.items():
            size = m.get("image_size")
            backbone = "ae_bonet" if key in ("ae_bonet", "random_init") else key.rsplit("_", 1)[0]
            ref = reference.PAPER2_TABLE5.get(backbone, {})
            # The random-init ablation has no paper counterpart; the others show both paper sizes.
            ref_256 = ref.get(256, (None, None)) if key != "random_init" else (None, None)
            ref_450 = ref.get(450, (None, None)) if key != "random_init" else (None, None)
            rows.append(
                {
                    "model": m.get("label", key),
                    "init": m.get("init"),
                    "image size": size,
                    "paper MAE @256 (reference)": ref_256[0],
                    "paper MSE @256 (reference)": ref_256[1],
                    "paper MAE @450 (reference)": ref_450[0],
                    "paper MSE @450 (reference)": ref_450[1],
                    "our MAE": _round(m.get("test", {}).get("mae"), 2),
                    "our MSE": _round(m.get("test", {}).get("mse"), 1),
                    "epochs run": m.get("epochs_run"),
                    "train time (s)": _round(m.get("train_seconds"), 0),
                }
            )
        if mean:
            rows.append(
                {
                    "model": "predicting the training mean",
                    "init": "-",
                    "image size": None,
                    "our MAE": _round(mean.get("mae"), 2),
                    "our MSE": _round(mean.get("mse"), 1),
                }
            )
        tables["table5"] = pd.DataFrame(rows)
        t4 = [
            {"method": k, "paper MAE (reference)": v, "our MAE": None}
            for k, v in reference.PAPER2_TABLE4.items()
        ]
        if "ae_bonet" in models:
            t4[-1]["our MAE"] = _round(models["ae_bonet"]["test"]["mae"], 2)
        tables["table4"] = pd.DataFrame(t4)
        folder = output_dir / BONET_DIR
        preds = _read_csvs(folder, "predictions")
        if "" in preds and "ae_bonet" in preds and len(preds[""]) != len(preds["ae_bonet"]):
            raise _damaged(
                folder / "predictions.csv",
                f"it holds {len(preds[''])} rows, predictions_ae_bonet.csv (of which it is a "
                f"copy) {len(preds['ae_bonet'])}",
            )
        for tag, df in preds.items():
            predictions[
                "AE-BoNet"
                if tag in ("", "ae_bonet")
                else f"AE-BoNet [{tag}]"
                if tag == "random_init"
                else models.get(tag, {}).get("label", tag)
            ] = df
        for tag, df in _read_csvs(folder, "history").items():
            histories[
                "AE-BoNet"
                if tag in ("", "ae_bonet")
                else f"AE-BoNet [{tag}]"
                if tag == "random_init"
                else models.get(tag, {}).get("label", tag)
            ] = df

    if predictions:
        tables["error_by_group"] = error_by_group(predictions)
    return Report(output_dir, tables, predictions, histories, missing, sources)


def error_by_group(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """MAE per model, by age band (years) and by sex, from the prediction files."""
    rows = []
    for name, df in predictions.items():
        err = (df["predicted"] - df["true"]).abs()
        years = df["true"] / 12.0
        for lo, hi in AGE_BANDS:
            sel = (years >= lo) & (years < hi)
            band = f"{lo}-{hi} y" if hi < 100 else f"{lo}+ y"
            rows.append(
                {
                    "model": name,
                    "group": band,
                    "n": int(sel.sum()),
                    "MAE": _round(err[sel].mean(), 2) if sel.any() else None,
                }
            )
        if "male" in df:
            male = df["male"].astype(str).str.lower().isin(["true", "1", "1.0"])
            for label, sel in (("female", ~male), ("male", male)):
                rows.append(
                    {
                        "model": name,
                        "group": label,
                        "n": int(sel.sum()),
                        "MAE": _round(err[sel].mean(), 2) if sel.any() else None,
                    }
                )
    return pd.DataFrame(rows)


def figures(report: Report) -> dict[str, Any]:
    """All-curves, predicted-vs-true, error-by-group and Bland-Altman figures (matplotlib)."""
    import matplotlib.pyplot as plt

    figs = {}
    if report.histories:
        n = len(report.histories)
        cols = min(3, n)
        rows = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
        for ax, (name, h) in zip(axes.flat, report.histories.items(), strict=False):
            x = h["epoch"] if "epoch" in h else np.arange(1, len(h) + 1)
            ax.plot(x, h["loss"], label="training")
            if "val_loss" in h:
                ax.plot(x, h["val_loss"], label="validation")
            ax.set_title(name, fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        for ax in list(axes.flat)[n:]:
            ax.axis("off")
        fig.suptitle("Training curves of every model (loss; log scale)")
        fig.tight_layout()
        figs["all_training_curves"] = fig
    if report.predictions:
        n = len(report.predictions)
        cols = min(4, n)
        rows = int(np.ceil(n / cols))
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.6 * rows), squeeze=False)
        fig2, axes2 = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
        for ax, ax2, (name, df) in zip(
            axes.flat, axes2.flat, report.predictions.items(), strict=False
        ):
            t, p = df["true"].to_numpy(float), df["predicted"].to_numpy(float)
            lim = (0, max(240.0, float(np.nanmax([t.max(), p.max()]))))
            ax.scatter(t, p, s=8, alpha=0.6)
            ax.plot(lim, lim, color="green", lw=1)
            ax.set(xlim=lim, ylim=lim, xlabel="true age (months)", ylabel="predicted (months)")
            ax.set_title(f"{name}\nMAE {np.mean(np.abs(p - t)):.1f}", fontsize=9)
            mean, diff = (t + p) / 2, p - t
            md, sd = diff.mean(), diff.std(ddof=1) if len(diff) > 1 else 0.0
            ax2.scatter(mean, diff, s=8, alpha=0.6)
            for y, style in ((md, "-"), (md + 1.96 * sd, "--"), (md - 1.96 * sd, "--")):
                ax2.axhline(y, color="red", ls=style, lw=1)
            ax2.set(xlabel="mean of true and predicted", ylabel="predicted - true")
            ax2.set_title(f"{name}\nbias {md:.1f}, limits ±{1.96 * sd:.1f}", fontsize=9)
        for ax in list(axes.flat)[n:] + list(axes2.flat)[n:]:
            ax.axis("off")
        fig.suptitle("Predicted vs true bone age (test set; green: 45° line)")
        fig.tight_layout()
        fig2.suptitle("Bland-Altman: bias and 95% limits of agreement")
        fig2.tight_layout()
        figs["pred_vs_true_all"] = fig
        figs["bland_altman_all"] = fig2
    if "error_by_group" in report.tables:
        import seaborn as sns

        g = report.tables["error_by_group"].dropna(subset=["MAE"])
        fig, ax = plt.subplots(figsize=(10, 4))
        sns.barplot(data=g, x="group", y="MAE", hue="model", ax=ax)
        ax.set(ylabel="MAE (months)", xlabel="")
        ax.set_title("Test error by age band and by sex")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        figs["error_by_group"] = fig
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


def differences(report: Report) -> list[str]:
    """Plain-language notes on where and why our numbers differ from the papers'."""
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
    t = report.tables.get("table1")
    if t is not None:
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
                )
            except (KeyError, TypeError, ValueError):
                notes.append(
                    f"{model}: test RMSE (or the mean predictor's) is not a number (null, a "
                    "stored NaN, in its metrics.json: did training diverge?), so it cannot be "
                    "compared with the paper's."
                )
    t5 = report.tables.get("table5")
    if t5 is not None and not t5.empty:
        ae = t5[t5["init"] == "autoencoder"]
        ri = t5[(t5["init"] == "random") & t5["model"].str.contains("AE-BoNet")]
        if not ae.empty and not ri.empty:
            a, b = ae["our MAE"].iloc[0], ri["our MAE"].iloc[0]
            verdict = "helped" if a < b else "did not help"
            notes.append(
                f"Pretraining {verdict} here: AE-BoNet test MAE {a:.2f} months from the "
                f"pretrained encoder vs {b:.2f} from random initialisation (paper: 9.3 at "
                "256 px with 900 pretraining epochs on 10,088 RSNA images)."
            )
    t2 = report.tables.get("table2")
    if t2 is not None and not t2.empty:
        notes.append(
            f"Autoencoder: {len(t2)} stage(s) of {', '.join(str(e) for e in t2['our epochs'])} "
            "epochs against the paper's 300/200/100/150/150; our 'accuracy' is Keras 2's "
            "binary accuracy at threshold 0.5, the metric the paper's code most likely logged, "
            "which measures thresholded pixels rather than reconstruction quality (PSNR/SSIM do)."
        )
    return notes


def write(report: Report, out_dir: Path | str | None = None) -> Path:
    """Write tables (CSV), figures (PNG) and ``report.md`` into ``out_dir``; return the report path."""
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir) if out_dir else report.output_dir / "07_comparison"
    for name, df in report.tables.items():
        results.write_csv(out_dir / f"{name}.csv", df)
    figs = figures(report)
    for name, fig in figs.items():
        results.save_figure(fig, out_dir / f"{name}.png")
        plt.close(fig)
    titles = {
        "table1": "Table I (paper 1): test metrics, paper vs ours",
        "table1_protocol": "Protocol of each paper-1 model",
        "table2": "Table 2 (paper 2): autoencoder pretraining stages, paper vs ours",
        "table4": "Table 4 (paper 2): AE-BoNet against related work (MAE, months)",
        "table5": "Table 5 (paper 2): AE-BoNet, its random-init ablation and ImageNet-style baselines",
        "table5_protocol": "Protocol of AE-BoNet and the baselines",
        "error_by_group": "Test MAE by age band and sex",
    }
    lines = [
        "# Reproduction report",
        "",
        f"Run: `{report.output_dir}`; written {time.strftime('%Y-%m-%d %H:%M')}. Every 'ours' number "
        "below is read from that run's result files (listed at the end); columns marked "
        "'(reference)' are the papers' published values.",
        "",
    ]
    if report.missing:
        lines += ["**Missing results** (the report covers only what exists):", ""]
        lines += [f"- {m}" for m in report.missing] + [""]
    for name in (
        "table1",
        "table1_protocol",
        "table2",
        "table4",
        "table5",
        "table5_protocol",
        "error_by_group",
    ):
        if name in report.tables:
            lines += [f"## {titles[name]}", "", _md_table(report.tables[name]), ""]
    if figs:
        lines += ["## Figures", ""]
        lines += [f"![{name}]({name}.png)" for name in figs] + [""]
    lines += ["## Where our numbers differ from the papers', and why", ""]
    lines += [f"- {n}" for n in differences(report)] or ["- No results to compare yet."]
    lines += ["", "## Sources", ""] + [f"- {k}: `{v}`" for k, v in report.sources.items()]
    return results.write_text(out_dir / "report.md", "\n".join(lines) + "\n")


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


def _summary_table(report: Report) -> pd.DataFrame:
    rows = []
    for stem, (_, label) in PAPER1_MODELS.items():
        path = report.output_dir / stem / "metrics.json"
        if path.is_file():
            m = results.read_json(path)["metrics"]
            rows.append(
                {
                    "model": label,
                    "image size": results.read_json(path)["params"]["image_size"],
                    "test MAE": m["test"]["mae"],
                    "test RMSE": m["test"]["rmse"],
                    "test R^2": m["test"]["r2"],
                    "mean-predictor MAE": m["mean_predictor"]["mae"],
                    "MAE / mean-predictor MAE": _ratio(
                        m["test"]["mae"], m["mean_predictor"]["mae"]
                    ),
                    "epochs": m["epochs_run"],
                    "train time (min)": _ratio(m["train_seconds"], 60),
                }
            )
    path = report.output_dir / BONET_DIR / "metrics.json"
    if path.is_file():
        doc = results.read_json(path)["metrics"]
        mean = doc["mean_predictor"]
        for m in doc["models"].values():
            rows.append(
                {
                    "model": m["label"],
                    "image size": m["image_size"],
                    "test MAE": m["test"]["mae"],
                    "test RMSE": m["test"]["rmse"],
                    "test R^2": m["test"]["r2"],
                    "mean-predictor MAE": mean["mae"],
                    "MAE / mean-predictor MAE": _ratio(m["test"]["mae"], mean["mae"]),
                    "epochs": m["epochs_run"],
                    "train time (min)": _ratio(m["train_seconds"], 60),
                }
            )
    return pd.DataFrame(rows).round(3)


def main(argv: list[str] | None = None) -> int:
    """``python -m nblib.reporting RUN_DIR``: print the run's summary table as Markdown."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nblib.reporting RUN_DIR", file=sys.stderr)
        return 2
    try:
        print(_md_table(summary_table(build(args[0]))))
    except (ResultError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
