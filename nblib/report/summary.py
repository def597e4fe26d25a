"""What a run of the series leaves for its reader: the summary table, HTML pages and index.html.

:func:`rows` reads each notebook's status, wall time and headline result (test MAE beside the
mean predictor's, read from its ``metrics.json``); :func:`write` saves them as ``summary.md`` and
``summary.csv`` at the run folder's root and :func:`console_table` formats them for the console.
:func:`render_all` writes an HTML page of every executed notebook (nbconvert's ``HTMLExporter``,
figures embedded) and of the reproduction report (Markdown, through nbconvert's mistune filter);
:func:`write_index` links them all, with the logs and the summary, from ``index.html``. A page
that cannot be rendered is named with the reason, never skipped in silence.
"""

from __future__ import annotations

import html
import time
import traceback
from pathlib import Path

import pandas as pd

from nblib.core import config, results, runfiles, timing
from nblib.report import leaderboard
from nblib.train import statistics

REPORT = Path(runfiles.REPORT_DIR) / runfiles.REPORT
COLUMNS = ["notebook", "status", "seconds", "metric", "value", "mean_predictor", "ratio", "note"]
# The 95% bootstrap interval of the value and of the ratio, where metrics.json holds one: extra
# CSV columns after the others (a reader of the old columns sees them unchanged).
INTERVAL_COLUMNS = ["low", "high", "ratio_low", "ratio_high"]
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 80em; padding: 0 1em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; }
.failed { color: #b00020; font-weight: bold; }
img { max-width: 100%; }
"""


def headline(folder: Path) -> dict:
    """The headline result in ``folder/metrics.json``: ``{}`` when the notebook writes none.

    Test MAE and the mean predictor's (paper 1's models; the first model of paper 2's
    regressors, AE-BoNet), or the last pretraining stage's validation MSE. Where the file holds
    the test metrics' bootstrap intervals (``intervals`` beside ``test``), the MAE's and the
    ratio's bounds come too (``low``, ``high``, ``ratio_low``, ``ratio_high``); an older file
    without them gives the plain values. A damaged file gives a ``note`` naming it instead of an
    exception: the summary must close every run.
    """
    path = folder / runfiles.METRICS
    if not path.is_file():
        return {}
    try:
        doc = results.read_json(path)
        metrics = doc["metrics"]
        mean = _number((metrics.get("mean_predictor") or {}).get("mae"))
        if isinstance(metrics.get("test"), dict):
            row = _mae("test MAE (months)", metrics["test"]["mae"], mean)
            return {**row, **_bounds(metrics.get("intervals"))}
        if metrics.get("models"):
            key, model = next(iter(metrics["models"].items()))
            label = model.get("label", key)
            row = _mae(f"{label} test MAE (months)", model["test"]["mae"], mean)
            return {**row, **_bounds(model.get("intervals"))}
        if metrics.get("stages"):
            last = metrics["stages"][-1]
            return {
                "metric": f"validation MSE after stage {last['stage']}",
                "value": _number(last["val_loss"]),
                "note": f"PSNR {_number(last['psnr']):.1f} dB",
            }
    except results.ResultError as e:
        return {"note": str(e)}
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as e:
        return {"note": f"{path}: no headline result ({type(e).__name__}: {e})"}
    return {}


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _mae(label: str, value, mean: float | None) -> dict:
    value = _number(value)
    ratio = value / mean if value is not None and mean else None
    return {"metric": label, "value": value, "mean_predictor": mean, "ratio": ratio}


def _bounds(ci) -> dict:
    """The MAE's and the ratio's interval bounds from a metrics.json ``intervals`` section:
    ``{}`` where there is none (an older run, or a test set too small for one), so the row
    keeps its plain values; a bound stored as null (NaN) stays None. The ratio's value comes
    with its bounds (the same number as MAE over the mean predictor's, computed beside them)."""
    if not isinstance(ci, dict):
        return {}
    out = {}
    for prefix, key in (("", "mae"), ("ratio_", "ratio_to_mean_predictor")):
        part = ci.get(key)
        if isinstance(part, dict):
            out[f"{prefix}low"] = _number(part.get("low"))
            out[f"{prefix}high"] = _number(part.get("high"))
    if isinstance(ci.get("ratio_to_mean_predictor"), dict):
        out["ratio"] = _number(ci["ratio_to_mean_predictor"].get("value"))
    return out


def rows(out_dir: Path, stems: list[str], this_run: dict[str, dict]) -> list[dict]:
    """One row per notebook of the series.

    ``this_run`` maps the notebooks this run executed to ``{"status": "done"|"FAILED",
    "seconds": s}``. A notebook finished by an earlier run (its marker in ``.done/``) is
    ``done earlier`` with the time it took then; any other is ``not run``.
    """
    out = []
    for stem in stems:
        marker = out_dir / ".done" / f"{stem}.json"
        if stem in this_run:
            row = {"notebook": stem, **this_run[stem]}
        elif marker.is_file():
            seconds = _marker_seconds(marker)
            row = {"notebook": stem, "status": "done earlier", "seconds": seconds}
        else:
            row = {"notebook": stem, "status": "not run", "seconds": None}
        if row["status"] != "not run":
            row.update(headline(out_dir / stem))
        out.append({c: row.get(c) for c in COLUMNS + INTERVAL_COLUMNS})
    return out


def _marker_seconds(marker: Path) -> float | None:
    try:
        seconds = results.read_json(marker).get("seconds")
    except (results.ResultError, AttributeError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) else None


def _fmt(value: float | None, spec: str = ".4g") -> str:
    return "-" if value is None else format(value, spec)


def _with_interval(value: float | None, low, high, digits: int, spec: str) -> str:
    """``28.5 (26.1-31.0)`` where both bounds are known, else the plain value as before."""
    if value is None or low is None or high is None:
        return _fmt(value, spec)
    return statistics.fmt(value, low, high, digits)


def _cells(row: dict) -> list[str]:
    """A row as the text of the summary's columns (console, Markdown and HTML alike): the value
    and the ratio with their 95% intervals where the notebook's metrics.json holds them."""
    return [
        row["notebook"],
        row["status"],
        timing.duration(row["seconds"]),
        row["metric"] or "-",
        _with_interval(row["value"], row.get("low"), row.get("high"), 1, ".4g"),
        _fmt(row["mean_predictor"]),
        _with_interval(row["ratio"], row.get("ratio_low"), row.get("ratio_high"), 2, ".2f"),
        row["note"] or "",
    ]


HEADER = ["notebook", "status", "wall time", "headline", "value", "mean predictor", "ratio", "note"]


def console_table(table: list[dict]) -> str:
    """The summary as aligned plain text, each line indented by two spaces."""
    cells = [HEADER] + [_cells(r) for r in table]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADER))]
    return "\n".join(
        "  " + "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        for line in cells
    )


def write(out_dir: Path, table: list[dict]) -> tuple[Path, Path]:
    """``summary.md`` and ``summary.csv`` at the run folder's root (atomic writes)."""
    md = [
        f"# Summary of the run in {config.shown(out_dir)}",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M')}. 'ratio' is the headline MAE divided by "
        "the MAE of predicting the training mean (below 1: the model learnt something). "
        "In brackets: the 95% bootstrap interval over the test images, where the notebook's "
        "metrics.json holds one (its 'intervals' section names the method, resamples and seed).",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "---|" * len(HEADER),
    ]
    md += ["| " + " | ".join(c.replace("|", "/") for c in _cells(r)) + " |" for r in table]
    md += _every_model(out_dir)
    md_path = results.write_text(out_dir / "summary.md", "\n".join(md) + "\n")
    frame = pd.DataFrame(table, columns=COLUMNS + INTERVAL_COLUMNS)
    csv_path = results.write_csv(out_dir / "summary.csv", frame)
    return md_path, csv_path


def _every_model(out_dir: Path) -> list[str]:
    """Every model's score on the official test table (:mod:`nblib.report.leaderboard`), also
    saved as ``official_test.md`` and ``.csv``; a line naming the problem where a result file
    cannot be read (the summary must close every run)."""
    try:
        written = leaderboard.write(out_dir)
    except (results.ResultError, KeyError, TypeError, ValueError, AttributeError) as e:
        return ["", f"Every model on the official test table: not available ({e})."]
    if written is None:
        return []
    return ["", "## Every model on the official test table", "", written[0].read_text()]


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def render_notebook(ipynb: Path, target: Path) -> Path:
    """An executed notebook as one HTML file (figures embedded), written atomically."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_filename(str(ipynb))
    return results.write_text(target, body)


def render_markdown(md: Path, target: Path, title: str) -> Path:
    """A Markdown file as an HTML page (tables rendered; image links kept relative, so
    ``target`` belongs in ``md``'s folder)."""
    from nbconvert.filters.markdown import markdown2html_mistune

    return results.write_text(target, _page(title, markdown2html_mistune(md.read_text())))


def _stale(source: Path, target: Path) -> bool:
    return not target.is_file() or target.stat().st_mtime < source.stat().st_mtime


def render_all(out_dir: Path, stems: list[str], log: Path) -> dict[str, str]:
    """Render every executed notebook of ``stems`` and the report, where missing or older than
    their source; return the pages that failed, ``{relative path: reason}``, and append each
    failure's traceback to ``log``."""
    failed = {}
    jobs = [
        (out_dir / "notebooks" / f"{s}.ipynb", out_dir / "notebooks" / f"{s}.html", None)
        for s in stems
    ]
    jobs.append((out_dir / REPORT, (out_dir / REPORT).with_suffix(".html"), "Reproduction report"))
    for source, target, title in jobs:
        if not source.is_file() or not _stale(source, target):
            continue
        try:
            if title is None:
                render_notebook(source, target)
            else:
                render_markdown(source, target, title)
        except Exception as e:  # noqa: BLE001 - any failure is reported, and the run goes on
            page = str(target.relative_to(out_dir))
            failed[page] = f"{type(e).__name__}: {e}"
            with open(log, "a") as f:
                f.write(f"Rendering {page} failed:\n{traceback.format_exc()}\n")
    return failed


def _link(out_dir: Path, rel: str | Path, text: str) -> str:
    """A relative link to ``rel`` when it exists under ``out_dir``, else the text alone."""
    if (out_dir / rel).exists():
        return f'<a href="{html.escape(Path(rel).as_posix())}">{html.escape(text)}</a>'
    return html.escape(text)


def write_index(out_dir: Path, table: list[dict], failed: dict[str, str], title: str) -> Path:
    """``index.html``: the summary with links to every executed notebook (HTML and ``.ipynb``),
    its results folder and log; the report; the logs; the summary files; failed renderings."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [*HEADER, "files"])
    lines = []
    for row in table:
        stem = row["notebook"]
        cells = _cells(row)
        page = f"notebooks/{stem}.html"
        cells_html = [_link(out_dir, page, stem)] + [html.escape(c) for c in cells[1:]]
        if row["status"] == "FAILED":
            cells_html[1] = f'<span class="failed">{cells_html[1]}</span>'
        files = [
            _link(out_dir, f"notebooks/{stem}.ipynb", "notebook"),
            _link(out_dir, stem, "results"),
            _link(out_dir, f"logs/{stem}.log", "log"),
        ]
        cells_html.append(" · ".join(f for f in files if f.startswith("<a")) or "-")
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells_html) + "</tr>")
    report_html = REPORT.with_suffix(".html")
    report = (
        f"<p>{_link(out_dir, report_html, 'The reproduction report')} "
        f"({_link(out_dir, REPORT, 'Markdown')})</p>"
        if (out_dir / REPORT).is_file()
        else "<p>No reproduction report yet: notebook 08 has not run in this folder.</p>"
    )
    logs = sorted((out_dir / "logs").glob("*.log")) if (out_dir / "logs").is_dir() else []
    log_items = "".join(f"<li>{_link(out_dir, p.relative_to(out_dir), p.name)}</li>" for p in logs)
    problems = (
        "<ul>"
        + "".join(
            f'<li class="failed">{html.escape(k)}: could not be rendered ({html.escape(v)})</li>'
            for k, v in failed.items()
        )
        + "</ul>"
        if failed
        else "<p>Every page was rendered.</p>"
    )
    body = f"""<h1>{html.escape(title)}</h1>
<p>Run folder <code>{html.escape(str(out_dir))}</code>; this page was written
{time.strftime("%Y-%m-%d %H:%M")}.</p>
<h2>Notebooks</h2>
<table><tr>{head}</tr>
{chr(10).join(lines)}
</table>
<p>Summary as {_link(out_dir, "summary.md", "Markdown")} and {_link(out_dir, "summary.csv", "CSV")};
timings in {_link(out_dir, "run_all_timings.json", "run_all_timings.json")}.</p>
<h2>Report</h2>
{report}
<h2>Logs</h2>
<ul>{log_items}</ul>
<h2>Rendering</h2>
{problems}"""
    return results.write_text(out_dir / "index.html", _page(title, body))
