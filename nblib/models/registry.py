"""Every model of the series by name, built through one keyword-only signature.

``registry.build("resnet50", image_size=256, width=1.0)`` is paper 1's ResNet-50 at its published
size. Names: ``resnet50`` and ``inception_v4`` (paper 1), ``autoencoder`` and ``ae_bonet``
(paper 2), and the keras.applications baselines of paper 2's Table 5 (``xception``, ``vgg16``,
``inception_v3``, ``mobilenet``). Every builder takes ``image_size`` and ``width`` (the filter
multiplier; MobileNet's alpha; ignored by the other baselines) and its own keyword options, as
listed by :func:`options`: e.g. ``output_bias``, ``flips``, ``name``, and ``weights`` (the
encoder weights file of ``ae_bonet``, ``"imagenet"`` or ``None`` for the baselines). Every model
takes raw uint8 gray images ``[S, S, 1]``.
"""

from __future__ import annotations

import functools
import inspect

import keras

from nblib.models import autoencoder, baselines, bonet, inception_v4, resnet50

MODELS = {
    "resnet50": resnet50.build,
    "inception_v4": inception_v4.build,
    "autoencoder": autoencoder.build,
    "ae_bonet": bonet.build,
    **{key: functools.partial(baselines.build, backbone=key) for key in baselines.BACKBONES},
}
_COMMON = ("image_size", "width")


def options(name: str) -> list[str]:
    """The keyword options model ``name`` takes besides ``image_size`` and ``width``."""
    params = inspect.signature(_builder(name)).parameters.values()
    return sorted(
        p.name
        for p in params
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in (*_COMMON, "backbone")
    )


def build(name: str, /, *, image_size: int, width: float, **kwargs) -> keras.Model:
    """Model ``name`` at ``image_size`` px and width multiplier ``width``.

    ``kwargs`` are the model's own options (:func:`options`); an unknown name or option raises
    ValueError naming what exists. Same seed, same options: the same initial weights.
    """
    builder = _builder(name)
    unknown = sorted(set(kwargs) - set(options(name)))
    if unknown:
        raise ValueError(
            f"Model {name!r} takes no option {', '.join(unknown)}; its options are "
            f"image_size, width, {', '.join(options(name))}"
        )
    return builder(image_size=image_size, width=width, **kwargs)


def _builder(name: str):
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name]
