"""Grad-CAM on any of the series' models, and its overlay on the radiograph."""

from __future__ import annotations

import cv2
import numpy as np

OVERLAY_SIDE = 768  # longest side of the Grad-CAM overlay PNG


class GradCam:
    """Grad-CAM (Selvaraju et al. 2017) on a model's last 4-D convolutional feature map.

    The feature map comes with the prediction (:meth:`Member.predict`); the model's head, from
    that map (and the sex input if the head uses it) to the months, is a model of its own here.
    The map's channels are weighted by the mean gradient of the predicted age and summed. For a
    classifier Grad-CAM keeps the positive part, the evidence for the class; the age is a
    regression, and on real radiographs the sum is mostly negative for a young predicted age
    (the features pull the estimate down), so the magnitude is shown: where the image moves the
    estimate most, up or down. Gradients come from the backend: TensorFlow through
    ``nblib.core.tfbackend``, JAX through ``jax.grad``.
    """

    SKIP = ("InputLayer", "Rescaling", "RandomFlip", "ZeroPadding2D", "Concatenate")

    def __init__(self, model, inputs: tuple[str, ...]):
        import keras

        backend = keras.backend.backend()
        if backend not in ("tensorflow", "jax"):
            raise NotImplementedError(
                f"Grad-CAM needs the TensorFlow or JAX backend, not {backend}"
            )
        self.layer = self.feature_layer(model)
        if self.layer is None:
            raise ValueError("the model has no 4-D feature map larger than 1x1")
        sex = [t for t, n in zip(model.inputs, inputs, strict=True) if n == "sex"]
        self.head = None
        for extra in ([], sex) if sex else ([],):
            try:
                self.head = keras.Model([self.layer.output, *extra], model.output)
                self.head_takes_sex = bool(extra)
                break
            except ValueError:
                continue
        if self.head is None:
            raise ValueError(f"the model's output does not flow through {self.layer.name} alone")

    @classmethod
    def feature_layer(cls, model):
        """The last layer whose output is a 4-D map larger than 1x1 (not pooling or the front)."""
        best = None
        for layer in model.layers:
            kind = type(layer).__name__
            if kind in cls.SKIP or "Pooling" in kind:
                continue
            try:
                shape = tuple(layer.output.shape)
            except (AttributeError, ValueError):  # a layer used at several places
                continue
            if len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
                best = layer
        return best

    def heat(self, fmap: np.ndarray, sex: str | None, size: int) -> np.ndarray:
        """Heat map in [0, 1] over the ``size x size`` input, from one image's feature map."""
        import keras

        fmap = np.asarray(fmap, np.float32)[None]
        if self.head_takes_sex:
            male = keras.ops.convert_to_tensor([[1.0 if sex == "M" else 0.0]])

            def head(f):
                return self.head([f, male], training=False)
        else:

            def head(f):
                return self.head(f, training=False)

        grads = _gradient(head, fmap)
        weights = grads.mean(axis=(1, 2), keepdims=True)
        cam = np.abs((fmap * weights).sum(axis=-1)[0])
        cam = cam / cam.max() if cam.max() > 0 else cam
        return cv2.resize(cam, (size, size), interpolation=cv2.INTER_LINEAR)


def _gradient(fn, x: np.ndarray) -> np.ndarray:
    """``d sum(fn(x)) / dx`` on the Keras backend in use (TensorFlow or JAX, see GradCam)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from nblib.core import tfbackend

        return tfbackend.gradient(fn, x)
    import jax
    import jax.numpy as jnp

    return np.asarray(jax.grad(lambda v: jnp.sum(fn(v)))(jnp.asarray(x)))


def overlay(gray: np.ndarray, cams: list[tuple[np.ndarray, tuple]]) -> np.ndarray:
    """The radiograph in colour with the mean heat map of ``cams`` (each over its box) on top."""
    heat = np.zeros(gray.shape, np.float32)
    for cam, (x0, y0, x1, y1) in cams:
        heat[y0:y1, x0:x1] += cv2.resize(cam, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    heat /= max(1, len(cams))
    scale = min(1.0, OVERLAY_SIDE / max(gray.shape))
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    base = cv2.cvtColor(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
    heat = cv2.resize(heat, size, interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(np.uint8(np.clip(heat, 0, 1) * 255), cv2.COLORMAP_JET)
    alpha = (0.5 * np.clip(heat, 0, 1))[..., None]  # no heat: the plain radiograph
    return np.uint8(np.round(base * (1 - alpha) + colour * alpha))
