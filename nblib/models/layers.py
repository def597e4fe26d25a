"""Building blocks shared by every architecture."""

from __future__ import annotations

import keras
from keras import layers


def scaled(filters: int, width: float) -> int:
    """Filters of a layer at width multiplier ``width`` (at least 4, so tiny models stay usable)."""
    return max(4, int(round(filters * width)))


def conv_bn_act(
    x,
    filters: int,
    kernel_size,
    strides=1,
    padding: str = "same",
    activation: str | None = "gelu",
    name: str = "conv",
):
    """Conv2D (no bias) -> BatchNorm -> activation; layers named ``{name}_conv/_bn/_act``."""
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer="he_normal",
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(axis=-1, epsilon=1.001e-5, name=f"{name}_bn")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


def regression_output(x, name: str = "age", bias: float = 0.0):
    """The single linear output, kept float32 under mixed precision.

    ``bias`` initialises the output at a typical age (the training mean): the architecture is
    unchanged, but training does not spend its first epochs climbing from 0 to ~120 months.
    """
    return layers.Dense(
        1,
        activation="linear",
        dtype="float32",
        name=name,
        bias_initializer=keras.initializers.Constant(bias),
    )(x)


def count_params(model: keras.Model) -> int:
    return int(
        sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size) for w in model.weights)
    )
