"""Run the notebook series headless with papermill: ``python -m nblib.apps.runner`` (``run_all.sh``).

Each notebook is executed with the profile's parameters into ``<out>/notebooks/``, its cell output
logged to ``<out>/logs/<notebook>.log``. A finished notebook leaves a marker in ``<out>/.done/``
recording what it ran with; a later run skips it while the notebook, the profile file and the
parameters are unchanged, so an interrupted series resumes where it stopped (and a notebook killed
mid-training resumes from its own checkpoints). The first failure stops the series, names the
notebook, prints the error's whole message (also appended to the notebook's log), keeps its
executed copy and log, and exits non-zero.

``--set name=value`` (repeatable) sets any configuration parameter: the value is read as YAML
(``true``, ``3``, ``0.5``, ``[80, 128]``); names in a notebook's parameters cell are passed as
papermill parameters, and every override also reaches :func:`nblib.core.config.make` through the
``BONEAGE_SET`` environment variable. The output folder is locked while the series runs, so two
runs never write into the same folder.

The console shows what a user needs and no more: a line as each notebook starts and ends, one
line per training epoch (epoch k/n, the last validation metric, the time left for the model being
trained), failures, and a closing summary table (status, wall time and headline test metric of
each notebook, also written as ``summary.md`` and ``summary.csv``). Framework messages (TensorFlow,
absl, XLA, CUDA, warnings) go to ``<out>/logs/``. Every executed notebook and the report are
rendered to HTML, and ``<out>/index.html`` links them with the logs and the summary.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import time
from pathlib import Path

import yaml

from nblib.core import config, locks, progress, quiet, results, runfiles
from nblib.report import seeds as seeds_report
from nblib.report import summary

NOTEBOOK_DIR = config.ROOT / "notebooks"
KERNEL = "boneage-repro"
MAX_ERROR_LINES = 200
# Set by their own options; --set must not set them a second, conflicting way.
OWN_OPTIONS = {
    "notebook": None,
    "profile": "--profile",
    "data_dir": "--data",
    "output_dir": "--out",
}
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The kernel's environment unless the user chose otherwise: TensorFlow's C++ logging off (its lines
# say nothing about the radiographs; notebooks load the frameworks through nblib.core.quiet), and
# progress as one line per finished loop, which is what an executed notebook and its page can show.
KERNEL_ENV_DEFAULTS = {
    quiet.LEVEL_VARIABLE: "3",
    progress.PROGRESS_VARIABLE: progress.LINES,
}


def notebooks() -> list[Path]:
    """The series, in order: ``notebooks/NN_*.ipynb``."""
    return sorted(p for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def select(paths: list[Path], only: str | None) -> list[Path]:
    """Keep the notebooks named by ``only``: ``"04"``, ``"03-05"``, ``"3,5"`` or ``"05-"``."""
    if not only:
        return paths
    wanted: set[int] = set()
    for part in only.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                wanted.update(range(int(lo) if lo else 0, (int(hi) if hi else 99) + 1))
            else:
                wanted.add(int(part))
        except ValueError:
            raise SystemExit(
                f"--only: cannot read {part!r}; use e.g. 04, 03-05, 3,5 or 05-"
            ) from None
    chosen = [p for p in paths if int(p.name[:2]) in wanted]
    if not chosen:
        raise SystemExit(
            f"--only {only}: no notebook matches (have {', '.join(p.name[:2] for p in paths)})"
        )
    return chosen


def parse_overrides(pairs: list[str] | None) -> dict:
    """``["drop_bad=true", "epochs=3"]`` -> ``{"drop_bad": True, "epochs": 3}``, names checked.

    Values are read as YAML, as papermill's ``-p`` reads them. An unknown name raises SystemExit
    listing the closest configuration parameters.
    """
    fields = sorted(f.name for f in dataclasses.fields(config.Config))
    out, problems = {}, []
    for pair in pairs or []:
        name, eq, text = pair.partition("=")
        name = name.strip()
        if not eq or not name:
            problems.append(f"--set {pair!r}: write name=value, e.g. --set drop_bad=true")
            continue
        if name in OWN_OPTIONS:
            how = OWN_OPTIONS[name]
            problems.append(f"--set {name}: " + (f"use {how} instead" if how else "cannot be set"))
            continue
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=3, cutoff=0.5)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"--set {name}: no such parameter{hint}")
            continue
        try:
            out[name] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            out[name] = text
    if problems:
        raise SystemExit("error: " + "\n       ".join(problems))
    return out


def notebook_parameters(nb: Path) -> set[str]:
    """The names assigned in a notebook's cell tagged ``parameters``."""
    return config.parameter_names(nb)


def _error_text(exc: BaseException) -> tuple[str, str]:
    """(the exception's whole message, its traceback as plain text) of a failed notebook."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    message = f"{ename}: {evalue}" if ename else f"{type(exc).__name__}: {exc}"
    trace = "\n".join(getattr(exc, "traceback", None) or [str(exc)])
    return ANSI.sub("", message).strip(), ANSI.sub("", trace).strip()


def _file_in_the_way(folder: Path) -> Path | None:
    """The existing file among ``folder`` and its parents, if any: no folder can be made there."""
    for p in (folder, *folder.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def _marker(path: Path) -> dict:
    """A finished-notebook marker; a damaged one counts as not finished (the notebook reruns)."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _fingerprint(nb: Path, params: dict) -> str:
    h = hashlib.sha256(nb.read_bytes())
    h.update((config.PARAMS_DIR / f"{params['profile']}.yaml").read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


class _Progress(logging.Handler):
    """Echo the notebook's one-line-per-epoch progress (``[progress] ...`` lines that
    ``nblib.train`` prints) to the console; everything else stays in the log."""

    def __init__(self, stem: str):
        super().__init__(logging.INFO)
        self.stem = stem

    def emit(self, record: logging.LogRecord) -> None:
        for line in str(record.getMessage()).splitlines():
            if line.startswith("[progress] "):
                print(f"[run_all] {self.stem}: {line[len('[progress] ') :]}", flush=True)


@contextlib.contextmanager
def _kernel_environment(overrides: dict):
    """The environment a notebook's kernel inherits while it runs, restored afterwards: the
    ``--set`` overrides (read by :func:`nblib.core.config.make`) and quiet framework logging."""
    saved = dict(os.environ)
    for k, v in KERNEL_ENV_DEFAULTS.items():
        os.environ.setdefault(k, v)
    if overrides:
        os.environ[config.SET_ENV] = json.dumps(overrides, default=str)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _stderr_into(log_path: Path):
    """Send this process's standard error, and so the kernel's (framework start-up noise,
    warnings), into the notebook's log instead of the console."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(log_path, "a") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def run(
    profile: str = "cpu",
    data: str | None = None,
    out: str | None = None,
    only: str | None = None,
    force: bool = False,
    overrides: dict | None = None,
    seeds: list[int] | None = None,
) -> int:
    """Execute the series; return a process exit code (0 when every selected notebook ran).

    With ``seeds``, the series runs once per seed into ``<out>/seed-<seed>/`` (each resumable on
    its own), every seed on the first seed's split lists, and ``<out>/seeds_summary.md`` gives
    each seed's headline result beside the mean and SD across seeds."""
    overrides = dict(overrides or {})
    try:
        config.load_profile(profile)  # fails early on a bad profile name or file
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out_dir = Path(out).expanduser().resolve() if out else config.ROOT / "runs" / profile
    blocker = _file_in_the_way(out_dir)
    if blocker is not None:
        print(
            f"error: --out {out_dir}: {blocker} is a file, so the output folder cannot be made "
            "there; choose another --out",
            file=sys.stderr,
        )
        return 2
    params = {"profile": profile, "output_dir": str(out_dir)}
    if data:
        data_path = Path(data).expanduser().resolve()
        if data_path.is_file():
            print(f"error: --data {data}: is a file, not a folder", file=sys.stderr)
            return 2
        if not data_path.is_dir():
            print(f"error: --data {data}: no such folder", file=sys.stderr)
            return 2
        params["data_dir"] = str(data_path)
    selected = select(notebooks(), only)
    if overrides:
        try:  # every value checked before anything runs
            for nb in selected:
                config.make(nb.stem, profile, **overrides)
        except ValueError as e:
            print(f"error: --set: {e}", file=sys.stderr)
            return 2
    if seeds:
        return _run_seeds(profile, out_dir, params, selected, force, overrides, seeds)
    try:
        with locks.lock_folder(out_dir):
            return _run_series(profile, out_dir, params, selected, force, overrides)
    except locks.FolderLocked as e:
        print(f"error: {e}", file=sys.stderr)
        return 3


def _run_seeds(profile, out_dir, params, selected, force, overrides, seeds) -> int:
    """The series once per seed, each in its own locked folder, then the table across seeds."""
    if "seed" in overrides:
        print("error: give the seeds with --seeds, not --set seed=...", file=sys.stderr)
        return 2
    shared = seeds_report.seed_dir(out_dir, seeds[0]) / runfiles.SPLITS
    for s in seeds:
        folder = seeds_report.seed_dir(out_dir, s)
        if s != seeds[0] and shared.is_dir() and not (folder / runfiles.SPLITS).exists():
            shutil.copytree(shared, folder / runfiles.SPLITS)  # the same test images for all
        seed_params = {**params, "output_dir": str(folder), "seed": s}
        try:
            with locks.lock_folder(folder):
                code = _run_series(profile, folder, seed_params, selected, force, overrides)
        except locks.FolderLocked as e:
            print(f"error: {e}", file=sys.stderr)
            return 3
        if code:
            return code
    stems = [p.stem for p in selected]
    df = seeds_report.table(out_dir, seeds, stems)
    path = seeds_report.write(out_dir, df, seeds_report.models(out_dir, seeds, stems))
    print(f"[run_all] across seeds {', '.join(map(str, seeds))} (also in {path}):", flush=True)
    print(path.read_text(), flush=True)
    return 0


def _run_series(
    profile: str, out_dir: Path, params: dict, selected: list[Path], force: bool, overrides: dict
) -> int:
    """The series itself, run while the output folder is locked."""
    data_note = params.get("data_dir", "as in the profile")
    print(
        f"[run_all] profile={profile} out={out_dir} data={data_note} "
        f"notebooks={' '.join(p.name[:2] for p in selected)}"
        + (f" seed={params['seed']}" if "seed" in params else "")
        + (f" set={json.dumps(overrides)}" if overrides else ""),
        flush=True,
    )
    for sub in ("notebooks", "logs", ".done"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    kernel = _kernel_name()  # looked up once for the series
    total = time.perf_counter()
    timings = {}
    this_run: dict[str, dict] = {}
    for nb in selected:
        marker = out_dir / ".done" / f"{nb.stem}.json"
        nb_params = dict(params)
        nb_params.update({k: v for k, v in overrides.items() if k in notebook_parameters(nb)})
        fp = _fingerprint(nb, {**nb_params, "set": overrides} if overrides else nb_params)
        if not force and marker.is_file() and _marker(marker).get("fingerprint") == fp:
            print(
                f"[run_all] {nb.stem}: already done, skipped (use --force to run again)", flush=True
            )
            continue
        seconds, failed = _execute(nb, out_dir, nb_params, overrides, kernel)
        if failed:
            this_run[nb.stem] = {"status": "FAILED", "seconds": seconds}
            _close_run(profile, out_dir, this_run)
            return 1
        timings[nb.stem] = round(seconds, 1)
        this_run[nb.stem] = {"status": "done", "seconds": seconds}
        results.write_json(
            marker,
            {
                "fingerprint": fp,
                "seconds": seconds,
                "params": nb_params,
                "set": overrides,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        print(f"[run_all] {nb.stem}: done in {seconds:.0f} s", flush=True)
    _write_timings(profile, out_dir, timings, time.perf_counter() - total)
    _close_run(profile, out_dir, this_run)
    print(
        f"[run_all] finished in {time.perf_counter() - total:.0f} s; results under {out_dir}, "
        f"overview in {out_dir / 'index.html'}",
        flush=True,
    )
    return 0


def _execute(
    nb: Path, out_dir: Path, nb_params: dict, overrides: dict, kernel: str
) -> tuple[float, bool]:
    """Execute one notebook with papermill into ``out_dir/notebooks``, its log in ``logs/``;
    return its wall time and whether it failed (a failure is reported on the console and in
    the log, with the notebook's error in plain words)."""
    import papermill as pm

    executed = out_dir / "notebooks" / nb.name
    log_path = out_dir / "logs" / f"{nb.stem}.log"
    print(f"[run_all] {nb.stem}: running ...", flush=True)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    pm_logger = logging.getLogger("papermill")
    pm_logger.addHandler(handler)
    pm_logger.setLevel(logging.INFO)
    pm_logger.propagate = False
    start = time.perf_counter()
    progress = _Progress(nb.stem)
    pm_logger.addHandler(progress)
    try:
        with _kernel_environment(overrides), _stderr_into(log_path):
            pm.execute_notebook(
                str(nb),
                str(executed),
                parameters=nb_params,
                kernel_name=kernel,
                cwd=str(NOTEBOOK_DIR),
                log_output=True,
                progress_bar=False,
            )
    except Exception as exc:  # noqa: BLE001 - any failure stops the series with a plain message
        seconds = time.perf_counter() - start
        pm_logger.removeHandler(handler)
        handler.close()
        _report_failure(nb, executed, log_path, exc, seconds)
        return seconds, True
    finally:
        pm_logger.removeHandler(handler)
        pm_logger.removeHandler(progress)
        handler.close()
    return time.perf_counter() - start, False


def _report_failure(nb: Path, executed: Path, log_path: Path, exc: BaseException, seconds) -> None:
    message, trace = _error_text(exc)
    lines = message.splitlines()
    if len(lines) > MAX_ERROR_LINES:
        cut = len(lines) - MAX_ERROR_LINES
        lines = lines[:MAX_ERROR_LINES] + [f"... ({cut} more lines in {log_path})"]
    print(f"[run_all] {nb.stem}: FAILED after {seconds:.0f} s", file=sys.stderr)
    print(f"  executed copy: {executed}\n  log: {log_path}", file=sys.stderr)
    print("  " + "\n  ".join(lines), file=sys.stderr)
    with open(log_path, "a") as log:
        log.write(f"\n[run_all] {nb.stem}: FAILED after {seconds:.0f} s\n")
        log.write(message + "\n\n" + trace + "\n")


def _write_timings(profile: str, out_dir: Path, timings: dict, seconds: float) -> None:
    results.write_json(
        out_dir / runfiles.TIMINGS,
        {
            "profile": profile,
            "this_run": timings,
            "seconds": seconds,
            # every finished notebook's own time, including those finished by an earlier run
            "notebooks": {
                p.stem: round(float(_marker(p).get("seconds") or 0), 1)
                for p in sorted((out_dir / ".done").glob("*.json"))
            },
        },
    )


def _close_run(profile: str, out_dir: Path, this_run: dict[str, dict]) -> None:
    """Render the HTML pages, write and print the summary table, write ``index.html``.

    Rendering's own messages go to ``logs/render.log``; a page that fails is named on the
    console and in index.html, and the run's exit code stays the notebooks' own.
    """
    stems = [p.stem for p in notebooks()]
    log = out_dir / "logs" / "render.log"
    with _stderr_into(log):
        failed = summary.render_all(out_dir, stems, log)
    for page, reason in failed.items():
        print(
            f"[run_all] HTML rendering of {page} failed ({reason}); see logs/render.log",
            file=sys.stderr,
            flush=True,
        )
    table = summary.rows(out_dir, stems, this_run)
    md_path, _ = summary.write(out_dir, table)
    print(f"[run_all] summary (also in {md_path.name} and summary.csv):", flush=True)
    print(summary.console_table(table), flush=True)
    try:
        summary.write_index(out_dir, table, failed, f"boneage-repro: the {profile} run")
    except Exception as e:  # noqa: BLE001 - the run's results stand; say what is missing
        print(
            f"[run_all] index.html could not be written ({type(e).__name__}: {e})", file=sys.stderr
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run_all.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--profile",
        default="cpu",
        choices=config.PROFILES,
        help="parameter set: smoke (tests), cpu (default), sample (real sample), full (the papers' data), paper (GPU)",
    )
    ap.add_argument(
        "--data",
        default=os.environ.get("BONEAGE_DATA_DIR"),
        help="dataset folder (RSNA Kaggle layout); default: the profile's, else synthetic",
    )
    ap.add_argument("--out", default=None, help="output folder (default: runs/<profile>)")
    ap.add_argument("--only", default=None, help="notebooks to run: 04, 03-05, 3,5 or 05-")
    ap.add_argument("--force", action="store_true", help="run notebooks again even if already done")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a parameter for every notebook, e.g. --set drop_bad=true --set epochs=3 "
        "(value read as YAML; repeatable)",
    )
    ap.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="run the series once per seed into <out>/seed-<seed>/ and summarise across seeds",
    )
    args = ap.parse_args(argv)
    overrides = parse_overrides(args.set)
    try:
        seeds = seeds_report.parse_seeds(args.seeds)
    except ValueError as e:
        print(f"error: --seeds: {e}", file=sys.stderr)
        return 2
    return run(args.profile, args.data, args.out, args.only, args.force, overrides, seeds)


if __name__ == "__main__":
    sys.exit(main())
