"""Run the notebook series headless with papermill: ``python -m nblib.runner`` (``run_all.sh``).

Each notebook is executed with the profile's parameters into ``<out>/notebooks/``, its cell output
logged to ``<out>/logs/<notebook>.log``. A finished notebook leaves a marker in ``<out>/.done/``
recording what it ran with; a later run skips it while the notebook, the profile file and the
parameters are unchanged, so an interrupted series resumes where it stopped (and a notebook killed
mid-training resumes from its own checkpoints). The first failure stops the series, names the
notebook, keeps its executed copy and log, and exits non-zero.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from pathlib import Path

from nblib import config, results

NOTEBOOK_DIR = config.ROOT / "notebooks"
KERNEL = "boneage-repro"


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


def _fingerprint(nb: Path, params: dict) -> str:
    h = hashlib.sha256(nb.read_bytes())
    h.update((config.PARAMS_DIR / f"{params['profile']}.yaml").read_bytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    return h.hexdigest()[:16]


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL if KERNEL in KernelSpecManager().find_kernel_specs() else "python3"


def run(
    profile: str = "cpu",
    data: str | None = None,
    out: str | None = None,
    only: str | None = None,
    force: bool = False,
) -> int:
    """Execute the series; return a process exit code (0 when every selected notebook ran)."""
    import papermill as pm

    config.load_profile(profile)  # fails early on a bad profile name
    out_dir = Path(out).resolve() if out else config.ROOT / "runs" / profile
    params = {"profile": profile, "output_dir": str(out_dir)}
    if data:
        data_path = Path(data).expanduser().resolve()
        if not data_path.is_dir():
            print(f"error: --data {data}: no such folder", file=sys.stderr)
            return 2
        params["data_dir"] = str(data_path)
    selected = select(notebooks(), only)
    kernel = _kernel_name()
    data_note = params.get("data_dir", "as in the profile")
    print(
        f"[run_all] profile={profile} out={out_dir} data={data_note} "
        f"notebooks={' '.join(p.name[:2] for p in selected)}",
        flush=True,
    )
    (out_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (out_dir / "logs").mkdir(parents=True, exist_ok=True)
    (out_dir / ".done").mkdir(parents=True, exist_ok=True)
    total = time.perf_counter()
    timings = {}
    for nb in selected:
        marker = out_dir / ".done" / f"{nb.stem}.json"
        fp = _fingerprint(nb, params)
        if (
            not force
            and marker.is_file()
            and json.loads(marker.read_text()).get("fingerprint") == fp
        ):
            print(
                f"[run_all] {nb.stem}: already done, skipped (use --force to run again)", flush=True
            )
            continue
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
        try:
            pm.execute_notebook(
                str(nb),
                str(executed),
                parameters=params,
                kernel_name=kernel,
                cwd=str(NOTEBOOK_DIR),
                log_output=True,
                progress_bar=False,
            )
        except Exception as exc:  # noqa: BLE001 - any failure stops the series with a plain message
            seconds = time.perf_counter() - start
            reason = str(exc).strip().splitlines()
            print(f"[run_all] {nb.stem}: FAILED after {seconds:.0f} s", file=sys.stderr)
            print(f"  executed copy: {executed}\n  log: {log_path}", file=sys.stderr)
            if reason:
                print("  " + "\n  ".join(reason[-12:]), file=sys.stderr)
            return 1
        finally:
            pm_logger.removeHandler(handler)
            handler.close()
        seconds = time.perf_counter() - start
        timings[nb.stem] = round(seconds, 1)
        results.write_json(
            marker,
            {
                "fingerprint": fp,
                "seconds": seconds,
                "params": params,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        )
        print(f"[run_all] {nb.stem}: done in {seconds:.0f} s", flush=True)
    results.write_json(
        out_dir / "run_all_timings.json",
        {
            "profile": profile,
            "this_run": timings,
            "seconds": time.perf_counter() - total,
            # every finished notebook's own time, including those finished by an earlier run
            "notebooks": {
                p.stem: round(json.loads(p.read_text())["seconds"], 1)
                for p in sorted((out_dir / ".done").glob("*.json"))
            },
        },
    )
    print(
        f"[run_all] finished in {time.perf_counter() - total:.0f} s; results under {out_dir}",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run_all.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--profile",
        default="cpu",
        choices=config.PROFILES,
        help="parameter set: smoke (tests), cpu (default), sample (real sample), paper (GPU)",
    )
    ap.add_argument(
        "--data",
        default=os.environ.get("BONEAGE_DATA_DIR"),
        help="dataset folder (RSNA Kaggle layout); default: the profile's, else synthetic",
    )
    ap.add_argument("--out", default=None, help="output folder (default: runs/<profile>)")
    ap.add_argument("--only", default=None, help="notebooks to run: 04, 03-05, 3,5 or 05-")
    ap.add_argument("--force", action="store_true", help="run notebooks again even if already done")
    args = ap.parse_args(argv)
    return run(args.profile, args.data, args.out, args.only, args.force)


if __name__ == "__main__":
    sys.exit(main())
