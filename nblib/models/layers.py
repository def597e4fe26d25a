"""Building blocks shared by every architecture."""

from __future__ import annotations

import keras
from keras import layers


def scaled(filters: int, width: float) -> int:
    """Filters of a layer at width multiplier ``width``: rounded, and never below 4.

    A floor of 4 (not 1) keeps every BatchNorm statistic and concatenated branch meaningful in
    the width-1/8 smoke models; at width 1/4 and above no layer of the papers' models reaches it.
    """
    return max(4, int(round(filters * width)))


BN_MOMENTUM = 0.99  # Keras' default, which both papers' code used


def image_input(image_size: int, channels: int = 3, flips: bool | str = True, name: str = "image"):
    """The model's front: a raw 8-bit gray image in, ``[0, 1]`` floats out, on the accelerator.

    Returns ``(inputs, x)``: ``inputs`` is a uint8 ``[S, S, 1]`` input (what the decode-once cache
    holds, so the feed moves a quarter of the bytes of float images); ``x`` is float32, scaled by
    1/255, flipped at random horizontally and vertically *independently* while training (two
    layers: Keras' ``horizontal_and_vertical`` mode draws one coin for both axes), and repeated to
    three channels when ``channels == 3``. Only built-in layers: a saved model takes a raw image
    and needs no code of ours to load or use. These layers stay float32 under mixed precision.

    ``flips``: ``True`` or ``"both"`` (paper 1's horizontal and vertical flips), ``"horizontal"``
    (mirror images only: no hand upside down), ``False`` or ``"none"``.
    """
    flips = flip_mode(flips)
    inputs = keras.Input((image_size, image_size, 1), dtype="uint8", name=name)
    x = layers.Rescaling(1.0 / 255.0, dtype="float32", name="to_unit")(inputs)
    if flips != "none":
        x = layers.RandomFlip("horizontal", dtype="float32", name="flip_lr")(x)
    if flips == "both":
        x = layers.RandomFlip("vertical", dtype="float32", name="flip_ud")(x)
    if channels == 3:
        x = layers.Concatenate(dtype="float32", name="gray_to_rgb")([x, x, x])
    elif channels != 1:
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    return inputs, x


FLIP_MODES = ("both", "horizontal", "none")


def flip_mode(flips: bool | str) -> str:
    """``flips`` as one of :data:`FLIP_MODES` (``True`` is ``"both"``, ``False`` ``"none"``)."""
    if flips is True or flips is False:
        return "both" if flips else "none"
    if flips not in FLIP_MODES:
        raise ValueError(f"flips must be one of {FLIP_MODES} (or true/false), got {flips!r}")
    return flips


def flip_draws(image, n: int = 8, seed: int = 0) -> list:
    """``n`` training-time draws of the model front's random flips on one uint8 ``S x S`` image
    (for showing what the models see), as ``[0, 1]`` float arrays."""
    import numpy as np

    keras.utils.set_random_seed(seed)
    inputs, x = image_input(image.shape[0], channels=1, flips=True)
    front = keras.Model(inputs, x)
    batch = np.repeat(np.asarray(image, np.uint8)[None, ..., None], n, axis=0)
    return list(keras.ops.convert_to_numpy(front(batch, training=True))[..., 0])


def conv_bn_act(
    x,
    filters: int,
    kernel_size,
    strides=1,
    padding: str = "same",
    activation: str | None = "gelu",
    name: str = "conv",
    use_bias: bool = False,
    scale: bool = True,
    initializer: str = "he_normal",
    epsilon: float = 1.001e-5,
):
    """Conv2D -> BatchNorm -> activation; layers named ``{name}_conv``, ``_bn``, ``_act``.

    ``use_bias``, ``scale`` (BatchNorm's gamma), ``initializer`` and ``epsilon`` are set by each
    architecture to match the code lineage it reproduces (a conv bias before BatchNorm is
    redundant; so is gamma before ReLU). BatchNorm keeps Keras' momentum of 0.99 here;
    :func:`set_bn_momentum` changes it for a whole model.
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer=initializer,
        name=f"{name}_conv",
    )(x)
    x = layers.BatchNormalization(
        axis=-1, epsilon=epsilon, momentum=BN_MOMENTUM, scale=scale, name=f"{name}_bn"
    )(x)
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


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNorm layer (nested models too); return how many.

    0.99 (Keras' default, the papers') averages over ~100 steps: with 40-60 steps per epoch, as in
    the scaled profiles, the statistics that validation uses lag the weights by more than an epoch,
    and validation loss jumps from epoch to epoch. Set before compiling: it is traced into the step.
    """
    n = 0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = float(momentum)
            n += 1
    return n


def count_params(model: keras.Model) -> int:
    """All parameters, trainable or not (BatchNorm statistics included), as Keras' summary counts."""
    return int(
        sum(int(w.numpy().size) if hasattr(w, "numpy") else int(w.size) for w in model.weights)
    )
