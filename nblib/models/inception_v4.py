"""Inception-V4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the impact of residual
connections") as a regressor: GELU activations, global average pooling, dropout, one linear unit.

Block counts and filter sizes follow the original (stem; 4 Inception-A; Reduction-A with
k, l, m, n = 192, 224, 256, 384; 7 Inception-B; Reduction-B; 3 Inception-C). Keras ships no
Inception-V4, so it is written here in the form of keras.applications' ``inception_resnet_v2.py``:
a ``conv2d_bn`` helper and blocks written branch by branch. Valid padding where the original uses
it makes 75 px the smallest input.

As in the original TF-slim code and its common Keras port, convolutions have no bias and BatchNorm
has no scale (gamma): 41,175,937 parameters at 256 px, of which 1,537 are the
output layer's. Layer names (``{block}_b{branch}_{step}_conv``, ``_bn``, ``_act``) are part of the
saved checkpoints' format, and so is the order in which the layers are made (it decides which
random draws each initialiser gets): both are pinned by the tests.
"""

from __future__ import annotations

import functools

import keras
from keras import layers

from nblib.models.layers import conv_bn_act, image_input, regression_output, scaled

MIN_SIZE = 75


def conv2d_bn(
    x,
    filters: int,
    kernel_size,
    strides=1,
    padding: str = "same",
    *,
    width: float = 1.0,
    activation: str | None = "gelu",
    name: str,
):
    """Conv2D (no bias) -> BatchNorm (no scale) -> activation, at width multiplier ``width``.

    ``filters`` is the paper's count; ``width`` scales it (:func:`~nblib.models.layers.scaled`).
    Layers are named ``{name}_conv``, ``{name}_bn`` and ``{name}_act``.
    """
    return conv_bn_act(
        x,
        scaled(filters, width),
        kernel_size,
        strides=strides,
        padding=padding,
        activation=activation,
        name=name,
        scale=False,
    )


def stem(x, *, width: float, activation: str):
    """The stem (the paper's Fig. 3): 256 px in, 29x29x384 out."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    x = conv(x, 32, 3, strides=2, padding="valid", name="stem_1")  # 256 px: 127x127x32
    x = conv(x, 32, 3, padding="valid", name="stem_2")  # 125x125x32
    x = conv(x, 64, 3, name="stem_3")  # 125x125x64

    branch_0 = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_4_pool")(x)
    branch_1 = conv(x, 96, 3, strides=2, padding="valid", name="stem_4_conv")
    x = layers.Concatenate(name="stem_4")([branch_0, branch_1])  # 62x62x160

    branch_0 = conv(x, 64, 1, name="stem_5a_1")
    branch_0 = conv(branch_0, 96, 3, padding="valid", name="stem_5a_2")
    branch_1 = conv(x, 64, 1, name="stem_5b_1")
    branch_1 = conv(branch_1, 64, (7, 1), name="stem_5b_2")
    branch_1 = conv(branch_1, 64, (1, 7), name="stem_5b_3")
    branch_1 = conv(branch_1, 96, 3, padding="valid", name="stem_5b_4")
    x = layers.Concatenate(name="stem_5")([branch_0, branch_1])  # 60x60x192

    branch_0 = conv(x, 192, 3, strides=2, padding="valid", name="stem_6_conv")
    branch_1 = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_6_pool")(x)
    return layers.Concatenate(name="stem_6")([branch_0, branch_1])  # 29x29x384


def inception_a(x, *, width: float, activation: str, name: str):
    """Inception-A (Fig. 4): 384 channels out at width 1, size kept."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    branch_0 = conv(x, 96, 1, name=f"{name}_b0")

    branch_1 = conv(x, 64, 1, name=f"{name}_b1_1")
    branch_1 = conv(branch_1, 96, 3, name=f"{name}_b1_2")

    branch_2 = conv(x, 64, 1, name=f"{name}_b2_1")
    branch_2 = conv(branch_2, 96, 3, name=f"{name}_b2_2")
    branch_2 = conv(branch_2, 96, 3, name=f"{name}_b2_3")

    branch_3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_b3_pool")(x)
    branch_3 = conv(branch_3, 96, 1, name=f"{name}_b3")
    return layers.Concatenate(name=name)([branch_0, branch_1, branch_2, branch_3])


def reduction_a(x, *, width: float, activation: str, name: str, k=192, l=224, m=256, n=384):  # noqa: E741 - the paper's names
    """Reduction-A (Fig. 7) with the paper's k, l, m, n: size halved, 1024 channels at width 1."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    branch_0 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_b0_pool")(x)

    branch_1 = conv(x, n, 3, strides=2, padding="valid", name=f"{name}_b1")

    branch_2 = conv(x, k, 1, name=f"{name}_b2_1")
    branch_2 = conv(branch_2, l, 3, name=f"{name}_b2_2")
    branch_2 = conv(branch_2, m, 3, strides=2, padding="valid", name=f"{name}_b2_3")
    return layers.Concatenate(name=name)([branch_0, branch_1, branch_2])


def inception_b(x, *, width: float, activation: str, name: str):
    """Inception-B (Fig. 5): 1024 channels out at width 1, size kept."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    branch_0 = conv(x, 384, 1, name=f"{name}_b0")

    branch_1 = conv(x, 192, 1, name=f"{name}_b1_1")
    branch_1 = conv(branch_1, 224, (1, 7), name=f"{name}_b1_2")
    branch_1 = conv(branch_1, 256, (7, 1), name=f"{name}_b1_3")

    branch_2 = conv(x, 192, 1, name=f"{name}_b2_1")
    branch_2 = conv(branch_2, 192, (7, 1), name=f"{name}_b2_2")
    branch_2 = conv(branch_2, 224, (1, 7), name=f"{name}_b2_3")
    branch_2 = conv(branch_2, 224, (7, 1), name=f"{name}_b2_4")
    branch_2 = conv(branch_2, 256, (1, 7), name=f"{name}_b2_5")

    branch_3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_b3_pool")(x)
    branch_3 = conv(branch_3, 128, 1, name=f"{name}_b3")
    return layers.Concatenate(name=name)([branch_0, branch_1, branch_2, branch_3])


def reduction_b(x, *, width: float, activation: str, name: str):
    """Reduction-B (Fig. 8): size halved, 1536 channels at width 1."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    branch_0 = layers.MaxPooling2D(3, strides=2, padding="valid", name=f"{name}_b0_pool")(x)

    branch_1 = conv(x, 192, 1, name=f"{name}_b1_1")
    branch_1 = conv(branch_1, 192, 3, strides=2, padding="valid", name=f"{name}_b1_2")

    branch_2 = conv(x, 256, 1, name=f"{name}_b2_1")
    branch_2 = conv(branch_2, 256, (1, 7), name=f"{name}_b2_2")
    branch_2 = conv(branch_2, 320, (7, 1), name=f"{name}_b2_3")
    branch_2 = conv(branch_2, 320, 3, strides=2, padding="valid", name=f"{name}_b2_4")
    return layers.Concatenate(name=name)([branch_0, branch_1, branch_2])


def inception_c(x, *, width: float, activation: str, name: str):
    """Inception-C (Fig. 6): 1536 channels out at width 1, size kept."""
    conv = functools.partial(conv2d_bn, width=width, activation=activation)
    branch_0 = conv(x, 256, 1, name=f"{name}_b0")

    branch_1 = conv(x, 384, 1, name=f"{name}_b1_1")
    branch_1a = conv(branch_1, 256, (1, 3), name=f"{name}_b1_2a")
    branch_1b = conv(branch_1, 256, (3, 1), name=f"{name}_b1_2b")
    branch_1 = layers.Concatenate(name=f"{name}_b1")([branch_1a, branch_1b])

    branch_2 = conv(x, 384, 1, name=f"{name}_b2_1")
    branch_2 = conv(branch_2, 448, (3, 1), name=f"{name}_b2_2")
    branch_2 = conv(branch_2, 512, (1, 3), name=f"{name}_b2_3")
    branch_2a = conv(branch_2, 256, (1, 3), name=f"{name}_b2_4a")
    branch_2b = conv(branch_2, 256, (3, 1), name=f"{name}_b2_4b")
    branch_2 = layers.Concatenate(name=f"{name}_b2")([branch_2a, branch_2b])

    branch_3 = layers.AveragePooling2D(3, strides=1, padding="same", name=f"{name}_b3_pool")(x)
    branch_3 = conv(branch_3, 256, 1, name=f"{name}_b3")
    return layers.Concatenate(name=name)([branch_0, branch_1, branch_2, branch_3])


def build(
    *,
    image_size: int = 256,
    width: float = 1.0,
    channels: int = 3,
    flips: bool | str = True,
    dropout: float = 0.2,
    activation: str = "gelu",
    output_bias: float = 0.0,
    name: str = "inception_v4",
) -> keras.Model:
    """Inception-V4 regressor; width 1 at 256 px is the paper's model (41,175,937 parameters).

    ``dropout`` follows the original's keep probability of 0.8 before the output layer;
    ``output_bias`` starts the linear output at a typical age (the training mean). The input is a
    raw uint8 gray image, scaled, flipped at random while training (``flips``) and repeated to
    ``channels`` channels by :func:`~nblib.models.layers.image_input`.
    """
    if image_size < MIN_SIZE:
        raise ValueError(
            f"Inception-V4 needs images of at least {MIN_SIZE} px (valid-padded stem and "
            f"reductions), got image_size={image_size}"
        )
    inputs, x = image_input(image_size, channels, flips)
    x = stem(x, width=width, activation=activation)  # 256 px: 29x29x384
    for i in range(1, 5):
        x = inception_a(x, width=width, activation=activation, name=f"inception_a{i}")
    # 29x29x384
    x = reduction_a(x, width=width, activation=activation, name="reduction_a")  # 14x14x1024
    for i in range(1, 8):
        x = inception_b(x, width=width, activation=activation, name=f"inception_b{i}")
    # 14x14x1024
    x = reduction_b(x, width=width, activation=activation, name="reduction_b")  # 6x6x1536
    for i in range(1, 4):
        x = inception_c(x, width=width, activation=activation, name=f"inception_c{i}")
    # 6x6x1536
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, regression_output(x, bias=output_bias), name=name)
