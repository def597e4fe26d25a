"""Trained models found, loaded and weighted for prediction: one ``.keras`` file, a run folder, or a
folder's weighted ensemble; each member fed as it was in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nblib.core import results, runfiles
from nblib.data import preprocess
from nblib.models import gradcam
from nblib.train import calibration


class UsageError(ValueError):
    """The command cannot run as asked (no model, a missing sex, a bad CSV): nothing predicted."""


def read_ensemble(path: Path) -> list[tuple[Path, float]]:
    """``(model path, weight)`` of each member of an ``ensemble.json``; paths relative to its folder."""
    doc = results.read_json(path)
    members = doc.get("members") if isinstance(doc, dict) else None
    if not isinstance(members, list) or not members:
        raise UsageError(f"{path}: expected a non-empty 'members' list")
    out = []
    for i, m in enumerate(members):
        if (
            not isinstance(m, dict)
            or "model" not in m
            or not isinstance(m.get("weight"), int | float)
        ):
            raise UsageError(f"{path}: member {i} needs 'model' (a path) and 'weight' (a number)")
        model = (path.parent / m["model"]).resolve()
        if not model.is_file():
            raise UsageError(f"{path}: member {i}'s model {model} is missing")
        if m["weight"] > 0:
            out.append((model, float(m["weight"])))
    return out


def calibration_of(specs: list[str]) -> calibration.Calibration | None:
    """The bias correction and prediction intervals an ensemble folder was saved with, when the
    models are exactly that one folder (its members, weights and calibration belong together: a
    calibration fitted for one ensemble says nothing of another); None otherwise."""
    if len(specs) != 1 or not (Path(specs[0]) / runfiles.ENSEMBLE).is_file():
        return None
    doc = results.read_json(Path(specs[0]) / runfiles.ENSEMBLE)
    fitted = doc.get("calibration") if isinstance(doc, dict) else None
    return calibration.Calibration.from_dict(fitted) if fitted else None


def find_models(specs: list[str]) -> list[Path]:
    """``.keras`` files from files and folders (every ``model.keras`` below a folder; a folder
    with an ``ensemble.json`` gives that ensemble's members, see :func:`weighted_models`)."""
    return [p for p, _ in weighted_models(specs)]


def weighted_models(specs: list[str]) -> list[tuple[Path, float]]:
    """``(.keras file, weight)`` pairs: a folder holding ``ensemble.json`` gives its members and
    their validation-chosen weights; any other model counts with weight 1."""
    paths: list[tuple[Path, float]] = []
    for spec in specs:
        p = Path(spec)
        if p.is_dir() and (p / runfiles.ENSEMBLE).is_file():
            paths += read_ensemble(p / runfiles.ENSEMBLE)
        elif p.is_dir():
            found = sorted(p.rglob("model.keras"))
            if not found:
                raise UsageError(f"no model.keras file under {p}")
            paths += [(f, 1.0) for f in found]
        elif p.is_file():
            if p.suffix != ".keras":
                raise UsageError(f"{p} is not a .keras model file")
            paths.append((p, 1.0))
        else:
            raise UsageError(f"no such model file or folder: {p}")
    return paths


@dataclass
class Member:
    """One loaded model of the ensemble: how its input is made, and its compiled prediction.

    :meth:`predict` makes one call per image for all test-time variants, through a model that
    also returns the Grad-CAM feature map (:class:`gradcam.GradCam`), so that the heat map costs only
    the gradient through the model's small head. A ``traced`` member runs that call as a
    compiled graph, traced once at loading (:meth:`warm_up`: seconds for a large model, then
    a few milliseconds an image); an untraced one calls the model eagerly (nothing to trace,
    a few tenths of a second an image), which is faster for a handful of images.
    """

    path: Path
    model: Any
    size: int
    inputs: tuple[str, ...]  # "image", and "sex" when the model takes it
    prep: preprocess.Preprocessing
    tta: tuple[str, ...]
    from_sidecar: bool
    cam: gradcam.GradCam | None = None
    cam_problem: str | None = None  # why there is no Grad-CAM
    weight: float = 1.0  # its share of the ensemble's average
    traced: bool = True  # a compiled prediction (traced at loading) or eager calls
    _runner: Any = field(default=None, repr=False)

    @property
    def needs_sex(self) -> bool:
        return "sex" in self.inputs

    def feed(self, images: np.ndarray, sex: str | None) -> Any:
        """The model's input for uint8 ``[N, S, S, 1]`` images (and the patient's sex)."""
        if not self.needs_sex:
            return images
        male = np.full((len(images), 1), 1.0 if sex == "M" else 0.0, np.float32)
        return {"image": images, "sex": male}

    def predict(self, images: np.ndarray, sex: str | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Months for each of ``images`` (uint8 ``[N, S, S, 1]``), and their Grad-CAM feature
        maps (None without Grad-CAM)."""
        import keras

        if self._runner is None:
            inputs = self.model.inputs if self.needs_sex else self.model.inputs[0]
            outputs = [self.cam.layer.output, self.model.output] if self.cam else self.model.output
            self._runner = keras.Model(inputs, outputs)
        x = self.feed(images, sex)
        if self.traced:
            out = self._runner.predict_on_batch(x)
        else:
            out = keras.tree.map_structure(
                keras.ops.convert_to_numpy, self._runner(x, training=False)
            )
        fmap, y = (out[0], out[1]) if self.cam else (None, out)
        return np.asarray(y, np.float64).reshape(len(images)), fmap

    def warm_up(self) -> None:
        """Trace the compiled prediction once (seconds for a large model)."""
        self.predict(np.zeros((len(self.tta), self.size, self.size, 1), np.uint8), "F")

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "weight": self.weight,
            "image_size": self.size,
            "inputs": list(self.inputs),
            "preprocessing": self.prep.to_dict(),
            "preprocessing_from": "sidecar" if self.from_sidecar else "the series' pipeline",
            "tta": list(self.tta),
            "gradcam_layer": self.cam.layer.name if self.cam else None,
            "gradcam_problem": self.cam_problem,
        }


def load_member(path: Path, traced: bool = True) -> Member:
    """Load a saved model (safe mode, no compile) and check what it takes and gives; ``traced``
    traces its prediction now (see :class:`Member`)."""
    import keras

    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 - Keras raises many kinds for a bad file
        raise UsageError(f"cannot load model {path}: {str(e).strip()[:300]}") from None
    names = tuple(t.name for t in model.inputs)
    if len(names) == 1:
        names = ("image",)
    unknown = [n for n in names if n not in preprocess.INPUTS]
    if unknown or "image" not in names:
        raise UsageError(
            f"model {path} takes inputs {list(names)}; a bone-age model takes 'image' "
            "(uint8 [N, S, S, 1]) and optionally 'sex' (1 = male, 0 = female, shape [N, 1])"
        )
    shape = tuple(model.inputs[names.index("image")].shape)
    if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 1 or not shape[1]:
        raise UsageError(f"model {path}: its image input is {shape}, not [N, S, S, 1]")
    if len(model.outputs) != 1 or tuple(model.outputs[0].shape)[1:] not in ((1,), ()):
        raise UsageError(f"model {path} must give one number (months) per image")
    size = int(shape[1])
    try:
        sidecar = preprocess.load_sidecar(path)
    except ValueError as e:
        raise UsageError(str(e)) from None
    prep, extra = sidecar if sidecar else (preprocess.Preprocessing(size), {})
    if prep.size != size:
        raise UsageError(
            f"{preprocess.sidecar_path(path)} says size {prep.size}, but the model takes {size} px"
        )
    if "inputs" in extra and set(extra["inputs"]) != set(names):
        raise UsageError(
            f"{preprocess.sidecar_path(path)} lists inputs {extra['inputs']}, but the model "
            f"takes {list(names)}"
        )
    tta = tuple(extra.get("tta", preprocess.TTA))
    member = Member(path, model, size, names, prep, tta, sidecar is not None, traced=traced)
    try:
        member.cam = gradcam.GradCam(model, names)
    except (ValueError, NotImplementedError) as e:
        member.cam_problem = str(e).strip()[:200]
    if traced:
        member.warm_up()
    return member
