"""Inception-V4 (Szegedy et al. 2016, "Inception-v4, Inception-ResNet and the impact of residual
connections") as a regressor: GELU activations, global average pooling, dropout, one linear unit.

Block counts and filter sizes follow the original (stem; 4 Inception-A; Reduction-A with
k, l, m, n = 192, 224, 256, 384; 7 Inception-B; Reduction-B; 3 Inception-C). Keras ships no
Inception-V4, so it is written here with the shared conv-BN-activation helper. Valid padding
where the original uses it makes 75 px the smallest input.

As in the original TF-slim code and its common Keras port, convolutions have no bias and BatchNorm
has no scale (gamma): 41,175,937 parameters at 256 px (DESIGN: about 41.2M), of which 1,537 are the
output layer's.
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models.layers import conv_bn_act as _conv_bn_act
from nblib.models.layers import image_input, regression_output, scaled

MIN_SIZE = 75


def conv_bn_act(x, filters, kernel_size, strides=1, padding="same", activation="gelu", name=""):
    """The shared helper with the original's BatchNorm without scale."""
    return _conv_bn_act(x, filters, kernel_size, strides, padding, activation, name, scale=False)


def _stem(x, w, act):
    c = lambda x, f, k, s=1, p="same", n="": conv_bn_act(x, scaled(f, w), k, s, p, act, n)  # noqa: E731
    x = c(x, 32, 3, 2, "valid", "stem_1")  # 256 px: 127x127x32
    x = c(x, 32, 3, 1, "valid", "stem_2")  # 125x125x32
    x = c(x, 64, 3, 1, "same", "stem_3")  # 125x125x64
    a = layers.MaxPooling2D(3, 2, padding="valid", name="stem_4_pool")(x)
    b = c(x, 96, 3, 2, "valid", "stem_4_conv")
    x = layers.Concatenate(name="stem_4")([a, b])  # 62x62x160
    a = c(x, 64, 1, n="stem_5a_1")
    a = c(a, 96, 3, 1, "valid", "stem_5a_2")
    b = c(x, 64, 1, n="stem_5b_1")
    b = c(b, 64, (7, 1), n="stem_5b_2")
    b = c(b, 64, (1, 7), n="stem_5b_3")
    b = c(b, 96, 3, 1, "valid", "stem_5b_4")
    x = layers.Concatenate(name="stem_5")([a, b])  # 60x60x192
    a = c(x, 192, 3, 2, "valid", "stem_6_conv")
    b = layers.MaxPooling2D(3, 2, padding="valid", name="stem_6_pool")(x)
    return layers.Concatenate(name="stem_6")([a, b])  # 29x29x384


def _inception_a(x, w, act, name):
    c = lambda x, f, k, n: conv_bn_act(x, scaled(f, w), k, 1, "same", act, f"{name}_{n}")  # noqa: E731
    b0 = c(x, 96, 1, "b0")
    b1 = c(c(x, 64, 1, "b1_1"), 96, 3, "b1_2")
    b2 = c(c(c(x, 64, 1, "b2_1"), 96, 3, "b2_2"), 96, 3, "b2_3")
    b3 = layers.AveragePooling2D(3, 1, padding="same", name=f"{name}_b3_pool")(x)
    b3 = c(b3, 96, 1, "b3")
    return layers.Concatenate(name=name)([b0, b1, b2, b3])  # 384 channels


def _reduction_a(x, w, act, name, k=192, l=224, m=256, n=384):  # noqa: E741 - the paper's names
    c = lambda x, f, ks, s, p, nm: conv_bn_act(x, scaled(f, w), ks, s, p, act, f"{name}_{nm}")  # noqa: E731
    b0 = layers.MaxPooling2D(3, 2, padding="valid", name=f"{name}_b0_pool")(x)
    b1 = c(x, n, 3, 2, "valid", "b1")
    b2 = c(c(c(x, k, 1, 1, "same", "b2_1"), l, 3, 1, "same", "b2_2"), m, 3, 2, "valid", "b2_3")
    return layers.Concatenate(name=name)([b0, b1, b2])  # 1024 channels


def _inception_b(x, w, act, name):
    c = lambda x, f, k, n: conv_bn_act(x, scaled(f, w), k, 1, "same", act, f"{name}_{n}")  # noqa: E731
    b0 = c(x, 384, 1, "b0")
    b1 = c(c(c(x, 192, 1, "b1_1"), 224, (1, 7), "b1_2"), 256, (7, 1), "b1_3")
    b2 = c(x, 192, 1, "b2_1")
    b2 = c(
        c(c(c(b2, 192, (7, 1), "b2_2"), 224, (1, 7), "b2_3"), 224, (7, 1), "b2_4"),
        256,
        (1, 7),
        "b2_5",
    )
    b3 = layers.AveragePooling2D(3, 1, padding="same", name=f"{name}_b3_pool")(x)
    b3 = c(b3, 128, 1, "b3")
    return layers.Concatenate(name=name)([b0, b1, b2, b3])  # 1024 channels


def _reduction_b(x, w, act, name):
    c = lambda x, f, k, s, p, n: conv_bn_act(x, scaled(f, w), k, s, p, act, f"{name}_{n}")  # noqa: E731
    b0 = layers.MaxPooling2D(3, 2, padding="valid", name=f"{name}_b0_pool")(x)
    b1 = c(c(x, 192, 1, 1, "same", "b1_1"), 192, 3, 2, "valid", "b1_2")
    b2 = c(c(x, 256, 1, 1, "same", "b2_1"), 256, (1, 7), 1, "same", "b2_2")
    b2 = c(c(b2, 320, (7, 1), 1, "same", "b2_3"), 320, 3, 2, "valid", "b2_4")
    return layers.Concatenate(name=name)([b0, b1, b2])  # 1536 channels


def _inception_c(x, w, act, name):
    c = lambda x, f, k, n: conv_bn_act(x, scaled(f, w), k, 1, "same", act, f"{name}_{n}")  # noqa: E731
    b0 = c(x, 256, 1, "b0")
    b1 = c(x, 384, 1, "b1_1")
    b1 = layers.Concatenate(name=f"{name}_b1")(
        [c(b1, 256, (1, 3), "b1_2a"), c(b1, 256, (3, 1), "b1_2b")]
    )
    b2 = c(c(c(x, 384, 1, "b2_1"), 448, (3, 1), "b2_2"), 512, (1, 3), "b2_3")
    b2 = layers.Concatenate(name=f"{name}_b2")(
        [c(b2, 256, (1, 3), "b2_4a"), c(b2, 256, (3, 1), "b2_4b")]
    )
    b3 = layers.AveragePooling2D(3, 1, padding="same", name=f"{name}_b3_pool")(x)
    b3 = c(b3, 256, 1, "b3")
    return layers.Concatenate(name=name)([b0, b1, b2, b3])  # 1536 channels


def build(
    image_size: int = 256,
    width: float = 1.0,
    *,
    channels: int = 3,
    flips: bool = True,
    dropout: float = 0.2,
    name: str = "inception_v4",
    activation: str = "gelu",
    output_bias: float = 0.0,
) -> keras.Model:
    """Inception-V4 regressor; width 1 at 256 px is the paper's model (41,175,937 parameters).

    ``dropout`` follows the original's keep probability of 0.8 before the output layer.
    """
    if image_size < MIN_SIZE:
        raise ValueError(
            f"Inception-V4 needs images of at least {MIN_SIZE} px (valid-padded stem and "
            f"reductions), got image_size={image_size}"
        )
    inputs, x = image_input(image_size, channels, flips)
    x = _stem(x, width, activation)  # 256 px: 29x29x384
    for i in range(4):
        x = _inception_a(x, width, activation, f"inception_a{i + 1}")  # 29x29x384
    x = _reduction_a(x, width, activation, "reduction_a")  # 14x14x1024
    for i in range(7):
        x = _inception_b(x, width, activation, f"inception_b{i + 1}")  # 14x14x1024
    x = _reduction_b(x, width, activation, "reduction_b")  # 6x6x1536
    for i in range(3):
        x = _inception_c(x, width, activation, f"inception_c{i + 1}")  # 6x6x1536
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(inputs, regression_output(x, bias=output_bias), name=name)
