"""Checkpoint files of one training, and the saved model.

A checkpoint is the last epoch's weights, the optimizer's state and the random states of the
model's layers, with a ``state.json`` written last that vouches for them and holds the settings'
signature: a checkpoint is continued only by a training of the same settings.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import keras
import numpy as np

from nblib.core import results, runfiles


def save_model(model: keras.Model, path: Path | str) -> Path:
    """Save ``model`` as ``.keras`` (atomically) without its training configuration.

    The saved file holds only built-in Keras layers and the weights: it loads with
    ``keras.saving.load_model(path, safe_mode=True)`` in a fresh interpreter, on any backend,
    without importing nblib (the training-only metrics, such as R2, stay behind), and it takes
    raw uint8 gray images ``[N, S, S, 1]``.
    """
    export = keras.Model.from_config(model.get_config())  # the architecture, no compile settings
    export.set_weights(model.get_weights())
    with results.atomic_path(path) as tmp:
        export.save(tmp)
    return Path(path)


def _seed_states(model: keras.Model) -> list:
    """The random-number states of the model's layers (the flips' coins): saved with a checkpoint
    so that a resumed training draws what an uninterrupted one would have drawn."""
    return [
        g.state
        for layer in model._flatten_layers(include_self=False)
        for g in getattr(layer, "_seed_generators", [])
    ]


def write_npz(path: Path, **groups) -> None:
    """Variables, group by group (``prefix=variables``), as ``<prefix><i>`` arrays of one
    ``.npz`` written atomically."""
    arrays = {
        f"{prefix}{i}": keras.ops.convert_to_numpy(v)
        for prefix, variables in groups.items()
        for i, v in enumerate(variables)
    }
    with results.atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def save_weights(model: keras.Model, path: Path) -> None:
    """The model's weights, in order, as one ``.npz``: written every epoch, so the writer must be
    fast; Keras' ``.weights.h5`` writer is an order of magnitude slower for a few hundred
    variables (``benchmarks/cpu.md``)."""
    write_npz(path, w=model.weights)


def load_weights(model: keras.Model, path: Path) -> None:
    """Load what :func:`save_weights` wrote, refusing weights of another architecture."""
    with np.load(path) as saved:
        arrays = [saved[f"w{i}"] for i in range(len(saved.files))]
    shapes = [tuple(v.shape) for v in model.weights]
    if [a.shape for a in arrays] != shapes:
        raise RuntimeError(
            f"{path} holds the weights of another model ({len(arrays)} arrays for this model's "
            f"{len(shapes)}); delete its folder to start this training again"
        )
    for v, a in zip(model.weights, arrays, strict=True):
        v.assign(a)


def save_checkpoint(model: keras.Model, ckpt: Path, state: dict) -> None:
    save_weights(model, ckpt / runfiles.LAST_WEIGHTS)
    write_npz(
        ckpt / runfiles.OPTIMIZER_STATE, v=model.optimizer.variables, seed=_seed_states(model)
    )
    results.write_json(ckpt / runfiles.CHECKPOINT_STATE, state)  # last: vouches for the two above


def restore_checkpoint(model: keras.Model, ckpt: Path) -> None:
    model.optimizer.build(model.trainable_variables)
    load_weights(model, ckpt / runfiles.LAST_WEIGHTS)
    saved = np.load(ckpt / runfiles.OPTIMIZER_STATE)
    variables = model.optimizer.variables
    seeds = _seed_states(model)
    if len([f for f in saved.files if f.startswith("v")]) != len(variables):
        raise RuntimeError(
            f"Checkpoint {ckpt} does not match this model's optimizer; delete the folder "
            "to start this training again"
        )
    for i, v in enumerate(variables):
        v.assign(saved[f"v{i}"])
    for i, v in enumerate(seeds):
        if f"seed{i}" in saved.files:
            v.assign(saved[f"seed{i}"])


# Settings signed only when they differ from this value, which checkpoints without the setting
# were trained with: such checkpoints keep resuming.
_SIGNED_SINCE = {"flips": "both"}


def signature(model: keras.Model, cfg) -> str:
    """What a checkpoint must match to be continued: everything but the epoch count.

    A larger total of epochs continues a training (staged pretraining relies on it); any other
    change (data, split, size, width, batch, learning rate, schedule, seed, architecture) starts
    afresh rather than mixing two trainings.
    """
    keys = (
        "data_dir",
        "split",
        "max_samples",
        "image_size",
        "width",
        "batch_size",
        "learning_rate",
        "lr_schedule",
        "warmup_epochs",
        "seed",
        "patience",
        "bn_momentum",
        "clipnorm",
        "average_epochs",
    )
    d = cfg.to_dict()
    signed = {k: d[k] for k in keys}
    # Settings added later are signed only where they differ from what older checkpoints were
    # trained with, so that those still resume.
    signed.update({k: d[k] for k, before in _SIGNED_SINCE.items() if d[k] != before})
    text = json.dumps(signed, sort_keys=True) + f"|{model.name}|{model.count_params()}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]
