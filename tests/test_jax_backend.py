"""The library under Keras' JAX backend, with TensorFlow hidden: every builder, a training killed
and resumed, the smoke run of notebook 05, a model saved under TensorFlow loaded under
JAX (and without nblib, safe_mode on), and the GPU check at a tiny scale on the CPU.

Each check runs in a fresh interpreter with ``KERAS_BACKEND=jax`` and a stand-in ``tensorflow``
package first on the path that fails to import, as on a GPU machine that has JAX and no
TensorFlow. Skipped only where JAX is not installed (it is part of the dev extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nblib.core import config

pytest.importorskip("jax")
ROOT = config.ROOT
HIDE_TF = str(ROOT / "tests" / "without_tensorflow")


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "BONEAGE_SET"}
    env.update(
        KERAS_BACKEND="jax",
        JAX_PLATFORMS="cpu",
        PYTHONPATH=os.pathsep.join([HIDE_TF, str(ROOT), env.get("PYTHONPATH", "")]),
    )
    env.update(extra)
    return env


def _run(cmd: list[str], env: dict | None = None, cwd=ROOT, timeout: int = 900):
    """A command in a fresh process (under JAX with TensorFlow hidden unless ``env`` says else)."""
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env or _env(), timeout=timeout, cwd=cwd
    )


def _python(code: str, *args: str) -> dict:
    out = _run([sys.executable, "-c", code, *args])
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


_BUILDERS = """
import json, keras, numpy as np
from nblib.models import registry
assert keras.backend.backend() == "jax"
counts = {
    "resnet50": registry.build("resnet50", image_size=256, width=1.0).count_params(),
    "inception_v4": registry.build("inception_v4", image_size=256, width=1.0).count_params(),
    "autoencoder": registry.build("autoencoder", image_size=256, width=1.0).count_params(),
    "ae_bonet": registry.build("ae_bonet", image_size=64, width=0.125).count_params(),
    "mobilenet": registry.build("mobilenet", image_size=64, width=0.25, weights=None).count_params(),
}
x = np.random.default_rng(0).integers(0, 256, (2, 80, 80, 1), dtype=np.uint8)
p = registry.build("ae_bonet", image_size=80, width=0.125, output_bias=100.0).predict(x, verbose=0)
import sys
print(json.dumps({"counts": counts, "finite": bool(np.isfinite(p).all()),
                  "tensorflow_loaded": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None}))
"""


@pytest.mark.slow
def test_every_builder_under_jax_without_tensorflow():
    res = _python(_BUILDERS)
    assert res["counts"]["resnet50"] == 32_019_841
    assert res["counts"]["inception_v4"] == 41_175_937
    assert res["counts"]["autoencoder"] == 12_546_177
    assert res["finite"] and not res["tensorflow_loaded"]


_RESUME = """
import json, sys, keras, numpy as np, pandas as pd
from nblib.core import config, runtime
from nblib.data import pipeline
from nblib.train import averaging, checkpoints, fitting
from nblib.models import bonet
out, kill = sys.argv[1], int(sys.argv[2])
cfg = config.make("03_resnet50", "smoke", output_dir=out, epochs=4, image_size=32)
runtime.setup(cfg)
rng = np.random.default_rng(0)
imgs = rng.integers(0, 256, (32, 32, 32), dtype=np.uint8)
y = rng.uniform(20, 200, 32).astype("float32")
src = pipeline.BatchSource(imgs, y, 8, True, "boneage", cfg.seed)
val = pipeline.BatchSource(imgs, y, 8, False, "boneage", cfg.seed)
train_ds, val_ds = pipeline.batches(src), pipeline.batches(val)
m = bonet.build(image_size=32, width=0.125, output_bias=100.0)  # flips, batch norm: small to compile
fitting.compile_model(m, cfg, loss="msle")
class Kill(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if kill and epoch + 1 == kill:
            raise SystemExit(3)
orig = keras.Model.fit
keras.Model.fit = lambda self, *a, **k: orig(self, *a, **{**k, "callbacks": [*k["callbacks"], Kill()]})
h = fitting.fit(m, train_ds, val_ds, cfg, verbose=0)
print(json.dumps({"loss": h["loss"].tolist(), "val_loss": h["val_loss"].tolist(),
                  "weights": float(sum(np.abs(w).sum() for w in m.get_weights()))}))
"""


@pytest.mark.slow
def test_training_killed_under_jax_resumes_to_the_same_end(tmp_path):
    full = _python(_RESUME, str(tmp_path / "full"), "0")
    killed = _run([sys.executable, "-c", _RESUME, str(tmp_path / "resumed"), "2"])
    assert killed.returncode == 3, killed.stderr[-3000:]
    resumed = _python(_RESUME, str(tmp_path / "resumed"), "0")
    assert len(full["loss"]) == len(resumed["loss"]) == 4
    # same optimizer state, same feed order of each epoch: the same end
    np.testing.assert_allclose(resumed["loss"], full["loss"], rtol=1e-5)
    np.testing.assert_allclose(resumed["val_loss"], full["val_loss"], rtol=1e-5)
    assert resumed["weights"] == pytest.approx(full["weights"], rel=1e-5)


_REESTIMATE = """
import json, keras, numpy as np
from nblib.core import runtime
from nblib.data import pipeline
from nblib.train import averaging, checkpoints, fitting
rng = np.random.default_rng(0)
imgs = rng.integers(0, 256, (30, 16, 16), dtype=np.uint8)  # batches of 8, 8, 8 and 6
feed = pipeline.batches(pipeline.BatchSource(imgs, np.zeros(30, "float32"), 8, True, "boneage", 0))
keras.utils.set_random_seed(0)
m = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Rescaling(1 / 255),
                      keras.layers.Conv2D(4, 3, name="conv"), keras.layers.BatchNormalization(name="bn"),
                      keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1)])
n = averaging.reestimate_batch_norm(m, feed, 8)
conv = keras.Model(m.inputs, m.get_layer("conv").output)
h = [conv.predict(imgs[i:i + 8, ..., None], verbose=0) for i in range(0, 30, 8)]
bn = m.get_layer("bn")
print(json.dumps({"batches": n, "momentum": bn.momentum,
    "mean": np.array(bn.moving_mean).tolist(), "var": np.array(bn.moving_variance).tolist(),
    "want_mean": np.mean([b.mean(axis=(0, 1, 2)) for b in h], axis=0).tolist(),
    "want_var": np.mean([b.var(axis=(0, 1, 2)) for b in h], axis=0).tolist()}))
"""


@pytest.mark.slow
def test_batch_norm_reestimation_under_jax():
    # compiled with jax.jit for the full batches, the shorter last one eagerly: every batch counts
    res = _python(_REESTIMATE)
    assert res["batches"] == 4 and res["momentum"] == 0.99
    np.testing.assert_allclose(res["mean"], res["want_mean"], rtol=1e-5)
    np.testing.assert_allclose(res["var"], res["want_var"], rtol=1e-4)


@pytest.mark.slow
@pytest.mark.notebook
def test_smoke_run_of_05_under_jax(tmp_path):
    # One notebook through run_all.sh: the config, feed, training, results and HTML glue under
    # JAX. Paper 1's models under JAX: every builder above; the resumed training above.
    res = _run(
        ["bash", str(ROOT / "run_all.sh"), "--profile", "smoke", "--only", "5"]
        + ["--out", str(tmp_path)]
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads((tmp_path / "05_autoencoder_pretraining" / "metrics.json").read_text())
    assert doc["provenance"]["hardware"]["backend"] == "jax"
    assert (tmp_path / "05_autoencoder_pretraining" / "encoder.weights.h5").is_file()


_SAVE_TF = """
import json, sys, numpy as np
from nblib.core import config, runtime
from nblib.train import averaging, checkpoints, fitting
from nblib.models import bonet
m = bonet.build(image_size=64, width=0.125, output_bias=100.0)
fitting.compile_model(m, config.make("06_ae_bonet", "smoke"), loss="mse")
x = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
m.fit(x, np.linspace(20, 200, 8).astype("float32"), epochs=1, verbose=0)
checkpoints.save_model(m, sys.argv[1])
np.save(sys.argv[2], m.predict(x, verbose=0))
"""

_LOAD = """
import json, sys, keras, numpy as np
assert "nblib" not in sys.modules
m = keras.saving.load_model(sys.argv[1], safe_mode=True)
x = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 1), dtype=np.uint8)
ref = np.load(sys.argv[2])
print(json.dumps({"backend": keras.backend.backend(), "max_diff": float(np.abs(m.predict(x, verbose=0) - ref).max()),
                  "nblib_loaded": any(k.startswith("nblib") for k in sys.modules)}))
"""


@pytest.mark.slow
def test_model_saved_under_tensorflow_loads_under_jax_without_nblib(tmp_path):
    path, ref = str(tmp_path / "model.keras"), str(tmp_path / "ref.npy")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env["PYTHONPATH"] = str(ROOT)
    saved = _run([sys.executable, "-c", _SAVE_TF, path, ref], env=env)
    assert saved.returncode == 0, saved.stderr[-3000:]
    for backend_env in (_env(PYTHONPATH=HIDE_TF), {**env, "PYTHONPATH": ""}):
        out = _run([sys.executable, "-c", _LOAD, path, ref], env=backend_env, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-3000:]
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["max_diff"] < 1e-4 and not res["nblib_loaded"], res


@pytest.mark.slow
def test_gpu_check_runs_at_a_tiny_scale_on_the_cpu(tmp_path):
    res = _run(
        [sys.executable, "-m", "nblib.apps.benchmark", "gpu", "--out", str(tmp_path)]
        + ["--image-size", "64", "--width", "0.125", "--batch-size", "4", "--steps", "1"]
        + ["--steps-per-execution", "2"]
        + ["--models", "autoencoder", "--no-series", "--budget", "400"]
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    doc = json.loads((tmp_path / "gpu.json").read_text())
    assert doc["backend"] == "jax"  # the series itself: test_smoke_run_of_05_under_jax
    # the plan measures the autoencoder in mixed precision (the smallest model to compile here)
    rates = {(r["model"], r["precision"]): r["train_img_s"] for r in doc["train"]}
    assert list(rates) == [("autoencoder", "mixed_bfloat16")] and all(v > 0 for v in rates.values())
    # fit() with K steps per compiled call is timed beside train_on_batch
    assert all(r["fit_img_s"] > 0 and r["steps_per_execution"] == 2 for r in doc["train"])
    assert doc["feed"]["feed_img_s"] > 0
    # projections only for the models measured: the autoencoder's notebooks 05 and 06
    assert [r["notebook"] for r in doc["projected_paper_hours"]] == [
        "05_autoencoder_pretraining",
        "06_ae_bonet",
    ]
    assert "| autoencoder |" in (tmp_path / "gpu.md").read_text()


def test_projected_paper_hours_by_hand():
    from nblib.apps import benchmark

    rows = {r["notebook"]: r for r in benchmark.projected_hours({"resnet50": 1000.0})}
    assert list(rows) == ["03_resnet50"]  # only measured models are projected
    # 120 epochs x (12,611 training images at 1,000/s + 1,425 validation images at 3,000/s)
    assert rows["03_resnet50"]["hours"] == pytest.approx(120 * (12.611 + 0.475) / 3600)
