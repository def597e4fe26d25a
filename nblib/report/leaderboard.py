"""Every model of a run on one test set: the data folder's official test table (on RSNA's data,
the official test-200, the field's benchmark), beside the published numbers of the papers and the
field.

Paper 1's protocol (03, 04, 07) tests on that table itself; paper 2's (06) tests on 200 images of
its own training table and scores each model on the official table as well (``benchmark`` in its
``metrics.json``). :func:`entries` reads those numbers back from the ``metrics.json`` files, with
their 95% bootstrap intervals and where each is stored, so that every row traces to a file;
nothing is computed here. :func:`write` saves ``official_test.md`` and ``official_test.csv`` at
the run folder's root.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nblib.core import results, runfiles
from nblib.report import reference
from nblib.train import statistics

MARKDOWN = "official_test.md"
CSV = "official_test.csv"
METRICS = ("mae", "rmse", "r2")
LABELS = {"resnet50": "GELU ResNet-50", "inception_v4": "Inception-V4", "beyond": "07 ensemble"}
COLUMNS = [
    "notebook",
    "model",
    "n",
    *[f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")],
    "train_minutes",
    "source",
]


def row(stem: str, model: str, test: dict, ci: dict | None, seconds, source: str) -> dict:
    """One model's test MAE, RMSE and R² with their interval bounds (``mae_low``, ...), where the
    run stored them, and its training minutes."""
    row = {"notebook": stem, "model": model, "source": source}
    ci = ci if isinstance(ci, dict) else {}
    row["n"] = ci.get("n")
    for m in METRICS:
        row[m] = test.get(m)
        part = ci.get(m) if isinstance(ci.get(m), dict) else {}
        row[f"{m}_low"], row[f"{m}_high"] = part.get("low"), part.get("high")
    row["train_minutes"] = seconds / 60 if isinstance(seconds, (int, float)) else None
    return row


def _paper1(stem: str, doc: dict) -> list[dict]:
    """03, 04, 07 under the official protocol: the headline and, for 07, every rung."""
    m = doc["metrics"]
    where = f"{stem}/{runfiles.METRICS}"
    label = LABELS.get(doc.get("model"), doc.get("model", stem))
    rows = [row(stem, label, m["test"], m.get("intervals"), m.get("train_seconds"), where)]
    corrected = (m.get("calibration") or {}).get("corrected")
    if corrected:  # 07's ensemble after its bias correction (fitted on validation)
        ci = m["calibration"].get("corrected_intervals")
        rows.append(row(stem, f"{label}, bias-corrected", corrected, ci, None, where))
    for key, rung in (m.get("rungs") or {}).items():
        test, ci = rung.get("test_tta") or rung["test"], rung.get("intervals_tta")
        ci = ci or rung.get("intervals")
        rows.append(row(stem, f"07 {key}", test, ci, rung.get("train_seconds"), where))
    return rows


def _paper2(stem: str, doc: dict) -> list[dict]:
    """06's models on the official table (their ``benchmark``; their own test set when the
    notebook ran the official protocol)."""
    rows, official = [], doc["params"].get("split") == "official"
    for key, model in doc["metrics"]["models"].items():
        part = model if official else model.get("benchmark")
        if not part:
            continue
        where = f"{stem}/{runfiles.METRICS}"
        label = model.get("label", key)
        seconds = model.get("train_seconds")
        rows.append(row(stem, label, part["test"], part.get("intervals"), seconds, where))
    return rows


def entries(out_dir: Path) -> list[dict]:
    """One row per model with a score on the official test table, in the series' order."""
    rows: list[dict] = []
    for folder in sorted(p for p in Path(out_dir).iterdir() if p.is_dir()):
        path = folder / runfiles.METRICS
        if not path.is_file():
            continue
        doc = results.read_json(path)
        metrics = doc.get("metrics") or {}
        if isinstance(metrics.get("test"), dict) and doc["params"].get("split") == "official":
            rows += _paper1(folder.name, doc)
        elif isinstance(metrics.get("models"), dict):
            rows += _paper2(folder.name, doc)
    return rows


def _cell(row: dict, metric: str, digits: int) -> str:
    value = row.get(metric)
    if value is None:
        return "-"
    return statistics.fmt(value, row.get(f"{metric}_low"), row.get(f"{metric}_high"), digits)


def markdown(rows: list[dict]) -> str:
    """The table of ``rows`` and, below it, the published numbers on the same benchmark."""
    n = next((r["n"] for r in rows if r.get("n")), None)
    lines = [
        f"Every model on the official test table ({n or '?'} images), 95% bootstrap intervals "
        "in brackets; chosen on validation data only.",
        "",
        "| notebook | model | MAE (months) | RMSE (months) | R² | training (min) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        minutes = f"{r['train_minutes']:.1f}" if r.get("train_minutes") is not None else "-"
        cells = [r["notebook"], r["model"], _cell(r, "mae", 1), _cell(r, "rmse", 1)]
        lines.append("| " + " | ".join([*cells, _cell(r, "r2", 2), minutes]) + " |")
    lines += ["", "Published on RSNA's test-200 (reference only, not computed here):", ""]
    lines += ["| system | MAE (months) | RMSE (months) | R² | source |", "|---|---|---|---|---|"]
    for ref in reference.TEST200_PUBLISHED:
        cells = [ref["system"]] + [_ref(ref.get(k)) for k in ("mae", "rmse", "r2")]
        lines.append("| " + " | ".join([*cells, ref["source"]]) + " |")
    return "\n".join(lines) + "\n"


def _ref(value) -> str:
    return "-" if value is None else f"{value:g}"


def write(out_dir: Path) -> tuple[Path, Path] | None:
    """``official_test.md`` and ``.csv`` at the run's root; None when no model has a score."""
    rows = entries(out_dir)
    if not rows:
        return None
    md = results.write_text(Path(out_dir) / MARKDOWN, markdown(rows))
    csv = results.write_csv(Path(out_dir) / CSV, pd.DataFrame(rows, columns=COLUMNS))
    return md, csv
