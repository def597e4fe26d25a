"""Throughput benchmarks (not timed tests): ``python -m nblib.apps.benchmark pipeline|train|predict|gpu``.

``pipeline`` measures the input pipeline's images/s for a first epoch (which decodes) and a
second (from the cache), against a naive loader that decodes every image every epoch, in one run,
and prints the ratio. ``train`` measures a model's training images/s at a given size, width and
batch, with mixed precision and XLA on or off. ``predict`` times the prediction command as a
person starts it: its start-up and its seconds per image after it. ``gpu`` is the GPU check: every paper model and
keras' ResNet50 at 256 px, the feed, projected paper-profile times and a ``paper-lite`` series,
written to ``benchmarks/`` as JSON and Markdown.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _table(data_dir: str | None, n: int, seed: int):
    from nblib.core import config
    from nblib.data import loading

    if data_dir:
        df = loading.load_dataset(data_dir)
    else:
        cfg = config.make("02_preprocessing", "cpu", seed=seed)
        df = loading.load_dataset(loading.resolve_data_dir(cfg))
    return df.sample(n=min(n, len(df)), random_state=seed).reset_index(drop=True)


def naive_batches(df, image_size: int, batch_size: int):
    """What a first attempt looks like: cv2 decode + resize of every image in every epoch."""
    import cv2

    paths, ages = list(df["path"]), df["boneage"].to_numpy(np.float32)
    for s in range(0, len(paths), batch_size):
        imgs = [
            cv2.resize(cv2.imread(p, cv2.IMREAD_GRAYSCALE), (image_size, image_size))
            for p in paths[s : s + batch_size]
        ]
        yield np.stack(imgs)[..., None], ages[s : s + batch_size]


def iterate(ds):
    """Yield the batches of one epoch of either feed (a tf.data dataset or a PyDataset)."""
    if hasattr(ds, "on_epoch_end") and hasattr(ds, "__getitem__"):
        for i in range(len(ds)):
            yield ds[i]
        ds.on_epoch_end()
    else:
        yield from ds


def _epoch_rate(batches) -> float:
    n, t = 0, time.perf_counter()
    for b in batches:
        n += int(np.shape(b[0])[0])
    return n / (time.perf_counter() - t)


def pipeline_throughput(df, image_size: int = 256, batch_size: int = 16, epochs: int = 2) -> dict:
    """Images/s of the project's feed per epoch and of the naive loader, measured in one run."""
    import keras

    from nblib.data import pipeline

    t = time.perf_counter()  # a cache of its own: the first epoch measures a fresh decode
    ds = pipeline.make_dataset(
        df, image_size, batch_size, training=True, cache=pipeline.DecodeCache()
    )
    build = time.perf_counter() - t
    rates = [_epoch_rate(iterate(ds)) for _ in range(epochs)]
    first = len(df) / (build + len(df) / rates[0])  # epoch 1 includes the decode done at build time
    naive = _epoch_rate(naive_batches(df, image_size, batch_size))
    return {
        "backend": keras.backend.backend(),
        "images": len(df),
        "image_size": image_size,
        "batch_size": batch_size,
        "pipeline_epoch1_img_s": first,
        "pipeline_epoch2_img_s": rates[1] if epochs > 1 else rates[0],
        "naive_img_s": naive,
        "ratio_epoch2_vs_naive": (rates[1] if epochs > 1 else rates[0]) / naive,
    }


MODELS = ("resnet50", "inception_v4", "autoencoder", "keras_resnet50")
METHOD = (
    "train_on_batch on one batch of random data already in host memory, 20 timed steps "
    "after 2 warm-up steps; each step returns its loss to Python, so steps do not overlap "
    "(a lower bound on what fit() reaches); and fit() over the same batches repeated in host "
    "memory with steps_per_execution K (K steps compiled into one call), one warm-up epoch of "
    "2K steps, then K * ceil(steps / K) timed steps"
)


def _build(model_name: str, image_size: int, width: float):
    """A model and its loss by name; ``keras_resnet50`` is keras.applications' ResNet50 (the
    reference), on three-channel float input as Keras ships it."""
    import keras

    from nblib.models import registry

    if model_name == "keras_resnet50":
        m = keras.applications.ResNet50(
            weights=None,
            input_shape=(image_size, image_size, 3),
            classes=1,
            classifier_activation=None,
        )
        return m, "msle"
    model = registry.build(model_name, image_size=image_size, width=width)
    return model, "mse" if model_name == "autoencoder" else "msle"


def _batch(model, batch_size: int, rng) -> tuple:
    shape = tuple(model.input_shape[1:])
    if model.inputs[0].dtype == "uint8":
        x = rng.integers(0, 256, (batch_size, *shape), dtype=np.uint8)
    else:
        x = rng.random((batch_size, *shape), dtype=np.float32)
    if model.output_shape[1:] == shape:  # the autoencoder reconstructs its input
        return x, x.astype(np.float32) / 255.0
    return x, rng.uniform(1, 228, batch_size).astype(np.float32)


def feed_comparison(image_size: int = 128, width: float = 0.25, batch_size: int = 16, n: int = 320):
    """Training images/s of paper 1's ResNet-50 fed by tf.data and by the PyDataset, in one run
    (TensorFlow backend: the only one where both feeds exist). Two epochs timed after one."""
    import keras

    from nblib.data import pipeline
    from nblib.models import registry

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, image_size, image_size), dtype=np.uint8)
    labels = rng.uniform(1, 228, n).astype(np.float32)
    out = {"image_size": image_size, "width": width, "batch_size": batch_size}
    for feed in ("tf.data", "pydataset"):
        keras.utils.set_random_seed(0)
        source = pipeline.BatchSource(images, labels, batch_size, True, "boneage", 0)
        if feed == "tf.data":
            from nblib.core import tfbackend

            ds = tfbackend.dataset(source)
        else:
            ds = pipeline.batches(source)
        model = registry.build("resnet50", image_size=image_size, width=width, output_bias=120.0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="msle")
        model.fit(ds, epochs=1, verbose=0)
        t = time.perf_counter()
        model.fit(ds, epochs=2, verbose=0)
        out[f"{feed}_img_s"] = round(2 * n / (time.perf_counter() - t), 1)
    out["ratio_tfdata_vs_pydataset"] = round(out["tf.data_img_s"] / out["pydataset_img_s"], 2)
    return out


def peak_memory_bytes() -> int | None:
    """Peak device memory of this process so far (GPU under JAX or TensorFlow), else None."""
    import keras

    try:
        if keras.backend.backend() == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use")
        if keras.backend.backend() == "tensorflow":
            from nblib.core import runtime

            if runtime.gpu_present():
                import tensorflow as tf

                return tf.config.experimental.get_memory_info("GPU:0")["peak"]
    except Exception:  # noqa: BLE001 - a missing statistic is reported as missing
        return None
    return None


def train_throughput(
    model_name: str,
    image_size: int,
    width: float,
    batch_size: int = 16,
    steps: int = 10,
    mixed_precision: bool = False,
    xla: bool = False,
    steps_per_execution: int = 0,
) -> dict:
    """Training images/s of a model on random data in memory (after warm-up steps that compile).

    Data are fed from NumPy arrays already in memory, so this measures the model's step alone.
    ``mixed_precision`` uses bfloat16 (or float16 on GPUs without bf16); ``xla`` applies to
    TensorFlow (JAX always compiles with XLA). With ``steps_per_execution`` K > 0, the rate of
    ``fit`` with K steps per compiled call is measured too (``fit_img_s``): what a training
    reaches when Python no longer waits between steps.
    """
    import keras

    from nblib.core import runtime

    policy = "float32"
    if mixed_precision:
        cfg = type("C", (), {"mixed_precision": "on"})()
        policy = runtime.precision_policy(cfg)
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model, loss = _build(model_name, image_size, width)
    jit = True if keras.backend.backend() == "jax" else xla
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, jit_compile=jit)
    x, y = _batch(model, batch_size, np.random.default_rng(0))
    t = time.perf_counter()
    for _ in range(2):  # the first step compiles; the second settles the allocator
        model.train_on_batch(x, y)
    warmup = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(steps):
        loss_value = model.train_on_batch(x, y)
    float(np.asarray(loss_value).ravel()[0])  # wait for the device to finish
    rate = steps * batch_size / (time.perf_counter() - t)
    fit_rate = None
    if steps_per_execution:
        fit_rate = _fit_rate(model, loss, jit, x, y, steps, steps_per_execution)
    keras.mixed_precision.set_global_policy("float32")
    return {
        "model": model_name,
        "backend": keras.backend.backend(),
        "image_size": image_size,
        "width": width,
        "batch_size": batch_size,
        "precision": policy,
        "xla": bool(jit),
        "params": model.count_params(),
        "first_steps_s": round(warmup, 2),
        "train_img_s": round(rate, 1),
        "steps_per_execution": steps_per_execution or None,
        "fit_img_s": None if fit_rate is None else round(fit_rate, 1),
        "peak_memory_gb": None if peak_memory_bytes() is None else peak_memory_bytes() / 1e9,
    }


def _fit_rate(model, loss, jit, x, y, steps: int, k: int) -> float:
    """Images/s of ``fit`` over ``x, y`` repeated, compiled ``k`` steps per call."""
    import keras

    model.compile(
        optimizer=keras.optimizers.Adam(1e-4), loss=loss, jit_compile=jit, steps_per_execution=k
    )
    batch = len(x)
    n = k * max(1, -(-steps // k))
    xs, ys = np.concatenate([x] * max(n, 2 * k)), np.concatenate([y] * max(n, 2 * k))
    kw = {"batch_size": batch, "epochs": 1, "verbose": 0, "shuffle": False}
    model.fit(xs[: 2 * k * batch], ys[: 2 * k * batch], **kw)  # compiles the K-step call
    t = time.perf_counter()
    model.fit(xs[: n * batch], ys[: n * batch], **kw)
    return n * batch / (time.perf_counter() - t)


def feed_throughput(image_size: int, batch_size: int, n: int = 2048) -> dict:
    """Images/s of the backend-neutral feed: batches gathered from a uint8 cache in a seeded
    order (as in training) and copied to the accelerator (JAX), one epoch after a warm-up."""
    import keras

    from nblib.data import pipeline

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, image_size, image_size), dtype=np.uint8)
    source = pipeline.BatchSource(
        images, rng.uniform(1, 228, n).astype(np.float32), batch_size, True, "boneage", 0
    )
    put = lambda b: b  # noqa: E731
    if keras.backend.backend() == "jax":
        import jax

        def put(b):
            return jax.block_until_ready(jax.device_put(b))

    put(source[0])
    t = time.perf_counter()
    for i in range(len(source)):
        put(source[i])
    return {"feed_img_s": round(n / (time.perf_counter() - t), 1), "batch_size": batch_size}


# The papers' training lengths and data sizes, for projected wall times (paper profile).
PAPER_RUNS = {
    "03_resnet50": ("resnet50", 12611, 1425, 120, "120 epochs at most (paper: early stop at 90)"),
    "04_inception_v4": ("inception_v4", 12611, 1425, 100, "100 epochs"),
    "05_autoencoder_pretraining": ("autoencoder", 10088, 2323, 900, "900 epochs in 5 stages"),
    "06_ae_bonet": ("autoencoder", 10088, 2323, 50, "AE-BoNet 50 epochs (encoder rate as proxy)"),
}


def projected_hours(rates: dict[str, float]) -> list[dict]:
    """Projected paper-profile training hours per notebook from measured training images/s.

    Validation is counted as a forward pass at three times the training rate (a training step
    is about three passes' work); data loading is taken as free (the feed is measured apart).
    """
    rows = []
    for nb, (model, n_train, n_val, epochs, note) in PAPER_RUNS.items():
        rate = rates.get(model)
        if not rate:
            continue
        seconds = epochs * (n_train / rate + n_val / (3 * rate))
        rows.append({"notebook": nb, "model": model, "epochs": note, "hours": seconds / 3600})
    return rows


def _run_isolated(args: list[str], timeout: float) -> dict:
    """Run one measurement in a fresh interpreter (its own precision policy and peak memory)."""
    import json
    import os
    import subprocess

    env = os.environ.copy()
    env.pop(
        "XLA_PYTHON_CLIENT_PREALLOCATE", None
    )  # each measurement owns the device, as in training
    out = subprocess.run(
        [sys.executable, "-m", "nblib.apps.benchmark", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"args": args, "error": (out.stderr or out.stdout)[-1500:]}
    return json.loads(lines[-1])


def gpu_check(
    out_dir: Path,
    image_size: int = 256,
    width: float = 1.0,
    batch_size: int = 32,
    steps: int = 20,
    steps_per_execution: int = 10,
    series: bool = True,
    budget_s: float = 480.0,
    series_profile: str = "paper-lite",
    models: tuple[str, ...] = MODELS,
) -> dict:
    """The GPU check: training throughput of each paper model (and keras' ResNet50 as the
    reference) with and without mixed precision, the feed's rate, projected paper-profile wall
    times, and a ``paper-lite`` series through papermill; JSON and Markdown into ``out_dir``.

    Each measurement runs in its own interpreter. On a CPU, small sizes keep it quick (the
    tests run it at 64 px, width 1/8). ``budget_s`` stops starting new measurements once spent.
    """
    import datetime
    import os
    import platform

    # This process only orchestrates (and measures the feed): JAX must not reserve most of the
    # GPU's memory here while each measurement runs in its own interpreter.
    os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    import keras

    from nblib.core import provenance, results, runtime

    t0 = time.perf_counter()
    tf = keras.backend.backend() == "tensorflow"
    plan = _plan(models, tf)
    common = ["--image-size", str(image_size), "--width", str(width)]
    common += ["--batch-size", str(batch_size), "--steps", str(steps)]
    common += ["--steps-per-execution", str(steps_per_execution)]
    rows = _measure(plan, common, budget_s, t0)
    feed = feed_throughput(image_size, batch_size)
    best = _compare(rows, feed)
    doc = {
        "what": "python -m nblib.apps.benchmark gpu",
        "method": METHOD,
        "date": datetime.date.today().isoformat(),
        "backend": keras.backend.backend(),
        "devices": runtime.accelerators()
        or [f"CPU ({platform.processor() or platform.machine()})"],
        "versions": provenance.package_versions(),
        "image_size": image_size,
        "width": width,
        "batch_size": batch_size,
        "train": rows,
        "feed": feed,
        "projected_paper_hours": projected_hours(best),
    }
    if series:
        doc["paper_lite"] = paper_lite_series(out_dir / f"{series_profile}-run", series_profile)
    results.write_json(out_dir / "gpu.json", doc)
    results.write_text(out_dir / "gpu.md", gpu_markdown(doc))
    return doc


def _measure(plan: list, common: list[str], budget_s: float, t0: float) -> list[dict]:
    """Each planned measurement in an interpreter of its own, until the budget is spent."""
    rows = []
    for name, mp, xla, det in plan:
        if time.perf_counter() - t0 > budget_s:
            rows.append({"model": name, "error": "skipped: time budget spent"})
            continue
        args = ["train", "--model", name, *common]
        args += ["--mixed-precision"] * mp + ["--xla"] * xla + ["--deterministic"] * det
        res = _run_isolated(args, timeout=max(60.0, budget_s - (time.perf_counter() - t0) + 60))
        rows.append(res)
        print(json.dumps(res), flush=True)
    return rows


def _plan(models: tuple[str, ...], tf: bool) -> list[tuple[str, bool, bool, bool]]:
    """(model, mixed precision, XLA, deterministic kernels) of each measurement; JAX always
    compiles with XLA, so the XLA-off rows are TensorFlow's only."""
    plan = [
        ("resnet50", False, True, False),
        ("resnet50", True, True, False),
        ("keras_resnet50", False, True, False),
        ("keras_resnet50", True, True, False),
        ("resnet50", True, True, True),
        ("inception_v4", True, True, False),
        ("autoencoder", True, True, False),
    ]
    if tf:
        plan += [("resnet50", False, False, False), ("resnet50", True, False, False)]
    return [p for p in plan if p[0] in models]


def _compare(rows: list[dict], feed: dict) -> dict[str, float]:
    """Each measured row against keras' ResNet50 at the same settings and against the feed's
    rate (in place); returns each model's best training rate."""
    ok = [r for r in rows if "train_img_s" in r]
    best: dict[str, float] = {}
    for r in ok:
        best[r["model"]] = max(best.get(r["model"], 0.0), r["train_img_s"])
    ref = {
        (r["precision"], r["xla"]): r["train_img_s"]
        for r in ok
        if r["model"] == "keras_resnet50" and not r.get("deterministic")
    }
    for r in ok:
        keras_rate = ref.get((r["precision"], r["xla"]))
        if keras_rate and r["model"] != "keras_resnet50":
            r["vs_keras_resnet50"] = round(r["train_img_s"] / keras_rate, 3)
        r["feed_over_model"] = round(feed["feed_img_s"] / r["train_img_s"], 1)
    return best


def paper_lite_series(out: Path, profile: str = "paper-lite") -> dict:
    """The paper architectures at 256 px and width 1 on phantom data, one epoch each, executed
    headless through papermill as ``run_all.sh --profile paper-lite`` does (the tests run the
    same code with the smoke profile)."""
    from nblib.apps import runner
    from nblib.core import results, runfiles

    t = time.perf_counter()
    code = runner.run(profile, out=str(out), force=True)
    timings = {}
    if (out / runfiles.TIMINGS).is_file():
        timings = results.read_json(out / runfiles.TIMINGS).get("notebooks", {})
    summary = {}
    for stem in ("03_resnet50", "04_inception_v4", "06_ae_bonet"):
        path = out / stem / runfiles.METRICS
        if path.is_file():
            m = results.read_json(path)["metrics"]
            test = m.get("test") or m.get("models", {}).get("ae_bonet", {}).get("test", {})
            summary[stem] = {"test_mae": test.get("mae"), "train_seconds": m.get("train_seconds")}
    return {
        "profile": profile,
        "exit_code": code,
        "seconds": round(time.perf_counter() - t, 1),
        "notebooks": timings,
        "models": summary,
    }


def _fit_cell(r: dict) -> str:
    rate = r.get("fit_img_s")
    return "-" if rate is None else f"{rate:,.0f} (K={r['steps_per_execution']})"


def gpu_markdown(doc: dict) -> str:
    """The GPU check as Markdown (committed under benchmarks/ and shown in the README)."""
    lines = [
        f"# GPU check: {', '.join(doc['devices'])}",
        "",
        f"{doc['date']}; Keras backend **{doc['backend']}**; "
        + ", ".join(f"{k} {v}" for k, v in doc["versions"].items())
        + f". Command: `{doc['what']}`. Batch {doc['batch_size']}, {doc['image_size']} px, "
        f"width {doc['width']}, random data in memory. Method: {doc.get('method', METHOD)}.",
        "",
        "| model | precision | XLA | deterministic | params | training img/s | "
        "fit img/s (K steps a call) | vs keras ResNet50 | peak memory (GB) | "
        "compile + first steps (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["train"]:
        if "train_img_s" not in r:
            err = str(r.get("error", ""))[-160:].replace("|", "/").replace("\n", " ")
            lines.append(
                f"| {r.get('model', r.get('args'))} | - | - | - | - | failed: {err} | | | | |"
            )
            continue
        mem = r.get("peak_memory_gb")
        lines.append(
            f"| {r['model']} | {r['precision']} | {'on' if r['xla'] else 'off'} | "
            f"{'on' if r.get('deterministic') else 'off'} | {r['params']:,} | {r['train_img_s']:,.0f} | "
            f"{_fit_cell(r)} | {r.get('vs_keras_resnet50', '-')} | "
            f"{'-' if mem is None else f'{mem:.1f}'} | {r['first_steps_s']} |"
        )
    f = doc["feed"]
    lines += [
        "",
        f"Feed (uint8 batches gathered from the cache and copied to the device): "
        f"{f['feed_img_s']:,.0f} images/s at batch {f['batch_size']}.",
        "",
        "Projected paper-profile training time from the best rate of each model "
        "(validation as a forward pass at 3x the training rate):",
        "",
        "| notebook | model | epochs | hours |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {p['notebook']} | {p['model']} | {p['epochs']} | {p['hours']:.2f} |"
        for p in doc["projected_paper_hours"]
    ]
    pl = doc.get("paper_lite")
    if pl:
        lines += [
            "",
            f"`{pl['profile']}` series through papermill (`run_all.sh --profile "
            f"{pl['profile']}`; phantom data, 1 epoch): exit code {pl['exit_code']}, "
            f"{pl['seconds']:.0f} s in all.",
            "",
            "| notebook | seconds |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in pl["notebooks"].items()]
    return "\n".join(lines) + "\n"


def _predict_seconds(model: str, images: list[str], out: Path, extra: list[str]) -> float:
    """Wall seconds of one ``boneage-predict`` process over ``images``, as a user starts it."""
    cmd = [sys.executable, "-m", "nblib.apps.predict", *images, "--model", model]
    t = time.perf_counter()
    proc = subprocess.run([*cmd, "--out", str(out), *extra], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"boneage-predict failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return seconds


def predict_timing(
    model: str, images: list[str], repeats: int = 3, gradcam: bool = True, sex: str | None = None
) -> dict:
    """The prediction command's start-up and per-image time, as a person meets them: whole
    processes over one image and over all of ``images``, each ``repeats`` times (medians).
    Start-up (imports, loading and tracing the models) is the one-image run less one image's
    share; per image is the difference of the two runs over the extra images."""
    import statistics as stats
    import tempfile

    extra = ([] if gradcam else ["--no-gradcam"]) + (["--sex", sex] if sex else [])
    one, many = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            one.append(_predict_seconds(model, images[:1], Path(tmp) / f"one{r}", extra))
            many.append(_predict_seconds(model, images, Path(tmp) / f"many{r}", extra))
    t1, tn = stats.median(one), stats.median(many)
    per_image = (tn - t1) / max(1, len(images) - 1)
    return {
        "model": model,
        "images": len(images),
        "gradcam": gradcam,
        "sex": sex,
        "repeats": repeats,
        "one_image_s": one,
        "all_images_s": many,
        "startup_s": t1 - per_image,
        "per_image_s": per_image,
    }


def _parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per measurement."""
    from nblib.core import config

    ap = argparse.ArgumentParser(
        prog="python -m nblib.apps.benchmark", description=__doc__.split("\n\n")[0]
    )
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pipeline", help="input pipeline vs a naive loader")
    p.add_argument(
        "--data", default=None, help="dataset folder (default: the embedded synthetic data)"
    )
    p.add_argument("--n", type=int, default=500, help="images to use")
    p.add_argument("--image-size", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    t = sub.add_parser("train", help="training images/s of a model")
    t.add_argument("--model", choices=MODELS, default="resnet50")
    t.add_argument("--image-size", type=int, default=128)
    t.add_argument("--width", type=float, default=0.25)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--steps", type=int, default=10)
    t.add_argument(
        "--steps-per-execution", type=int, default=0, help="also time fit(), K steps a call"
    )
    t.add_argument("--mixed-precision", action="store_true")
    t.add_argument("--xla", action="store_true")
    t.add_argument("--out", default=None)
    t.add_argument("--json", action="store_true", help="print the result as one JSON line")
    t.add_argument("--deterministic", action="store_true", help="deterministic kernels")
    f = sub.add_parser("feeds", help="tf.data against the PyDataset feed (TensorFlow backend)")
    f.add_argument("--image-size", type=int, default=128)
    f.add_argument("--width", type=float, default=0.25)
    f.add_argument("--batch-size", type=int, default=16)
    q = sub.add_parser("predict", help="boneage-predict's start-up and per-image time")
    q.add_argument("--model", required=True, help="a model file or an ensemble folder (07's)")
    q.add_argument("images", nargs="+", help="image files (20 or so: the first also runs alone)")
    q.add_argument("--repeats", type=int, default=3)
    q.add_argument("--no-gradcam", action="store_true")
    q.add_argument("--sex", default=None, help="M or F, for models that take the sex")
    q.add_argument("--out", default=None, help="write the numbers as JSON here")
    g = sub.add_parser("gpu", help="the GPU check (models, feed, projections, paper-lite series)")
    g.add_argument("--out", default=str(config.ROOT / "benchmarks"))
    g.add_argument("--image-size", type=int, default=256)
    g.add_argument("--width", type=float, default=1.0)
    g.add_argument("--batch-size", type=int, default=32)
    g.add_argument("--steps", type=int, default=20)
    g.add_argument("--steps-per-execution", type=int, default=10, help="K of the fit() timing")
    g.add_argument("--budget", type=float, default=480.0, help="seconds of measurements at most")
    g.add_argument("--no-series", action="store_true", help="skip the paper-lite series")
    g.add_argument(
        "--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}"
    )
    g.add_argument("--series-profile", default="paper-lite", help="profile of the series run")
    g.add_argument(
        "--series-only",
        action="store_true",
        help="run only the series and add it to the gpu.json already in --out",
    )
    g.add_argument("--series-out", default=None, help="run folder of the series")
    return ap


def _pipeline_command(args) -> dict:
    """``pipeline``: the feed against a naive loader, printed."""
    res = pipeline_throughput(
        _table(args.data, args.n, args.seed), args.image_size, args.batch_size
    )
    print(f"pipeline, {res['images']} images at {res['image_size']} px, batch {res['batch_size']}:")
    print(f"  epoch 1 (decode + cache): {res['pipeline_epoch1_img_s']:9.1f} img/s")
    print(f"  epoch 2 (from cache):     {res['pipeline_epoch2_img_s']:9.1f} img/s")
    print(f"  naive loader (decode every epoch): {res['naive_img_s']:9.1f} img/s")
    print(f"  ratio epoch 2 / naive: {res['ratio_epoch2_vs_naive']:.1f}x")
    return res


def _train_command(args) -> dict:
    """``train``: one model's training rate, printed (or as one JSON line)."""
    if args.deterministic:  # before the backend touches a device
        from nblib.core import runtime

        runtime.make_deterministic(type("C", (), {"seed": 0, "deterministic": True})())
    res = train_throughput(
        args.model,
        args.image_size,
        args.width,
        args.batch_size,
        args.steps,
        args.mixed_precision,
        args.xla,
        args.steps_per_execution,
    )
    res["deterministic"] = bool(args.deterministic)
    if args.json:
        print(json.dumps(res))
    else:
        print(
            f"{res['model']} at {res['image_size']} px, width {res['width']}, batch "
            f"{res['batch_size']}, {res['precision']}, XLA {'on' if res['xla'] else 'off'}: "
            f"{res['train_img_s']:.1f} train img/s (compile + first steps "
            f"{res['first_steps_s']:.1f} s, {res['params']:,} params)"
        )
    return res


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.what == "predict":
        res = predict_timing(args.model, args.images, args.repeats, not args.no_gradcam, args.sex)
        print(
            f"boneage-predict, {res['images']} images, Grad-CAM {'on' if res['gradcam'] else 'off'}"
            f": start-up {res['startup_s']:.1f} s, then {res['per_image_s']:.2f} s an image "
            f"(medians of {res['repeats']} runs)"
        )
        if args.out:
            from nblib.core import provenance, results

            results.write_json(Path(args.out), {**res, "provenance": provenance.provenance()})
        return 0
    if args.what == "feeds":
        print(json.dumps(feed_comparison(args.image_size, args.width, args.batch_size)))
        return 0
    if args.what == "gpu" and args.series_only:
        from nblib.core import results

        out = Path(args.out)
        doc = results.read_json(out / "gpu.json")
        run_dir = Path(args.series_out or out / f"{args.series_profile}-run")
        doc["paper_lite"] = paper_lite_series(run_dir, args.series_profile)
        results.write_json(out / "gpu.json", doc)
        results.write_text(out / "gpu.md", gpu_markdown(doc))
        print(gpu_markdown(doc))
        return doc["paper_lite"]["exit_code"]
    if args.what == "gpu":
        doc = gpu_check(
            Path(args.out),
            args.image_size,
            args.width,
            args.batch_size,
            args.steps,
            args.steps_per_execution,
            series=not args.no_series,
            budget_s=args.budget,
            series_profile=args.series_profile,
            models=tuple(m.strip() for m in args.models.split(",")),
        )
        print(gpu_markdown(doc))
        return 0 if all("train_img_s" in r for r in doc["train"]) else 1
    res = _pipeline_command(args) if args.what == "pipeline" else _train_command(args)
    if args.out:
        from nblib.core import results

        results.write_json(Path(args.out), res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
