"""Paper 2's convolutional autoencoder, whose encoder AE-BoNet reuses.

Encoder: four blocks of (3x3 convolution, batch norm, ReLU, 2x2 max pooling) with 64, 128, 256
and 512 filters, then a 1024-filter bottleneck block (convolution, batch norm, ReLU). Decoder, the
mirror image: four blocks of (2x upsampling, 3x3 convolution, batch norm, ReLU) with 512, 256, 128
and 64 filters, and a 1x1 convolution with a sigmoid back to one channel. At 256 px and width 1
this has 12.55M parameters (the paper gives no count; DESIGN's measurement of its layout: 12.5M).
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models.layers import conv_bn_act, scaled

ENCODER_FILTERS = (64, 128, 256, 512)
BOTTLENECK = 1024


def build(
    image_size: int = 256, width: float = 1.0, channels: int = 1
) -> tuple[keras.Model, keras.Model]:
    """Return ``(autoencoder, encoder)``; the encoder shares its layers (and weights) with the autoencoder."""
    if image_size % 16:
        raise ValueError(
            f"The autoencoder pools four times: image_size must be a multiple of 16, got {image_size}"
        )
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = inputs
    for i, f in enumerate(ENCODER_FILTERS, start=1):
        x = conv_bn_act(x, scaled(f, width), 3, activation="relu", name=f"enc{i}")
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)  # 256 px: 128, 64, 32, 16
    code = conv_bn_act(
        x, scaled(BOTTLENECK, width), 3, activation="relu", name="bottleneck"
    )  # 16x16x1024
    encoder = keras.Model(inputs, code, name="encoder")
    x = code
    for i, f in enumerate(reversed(ENCODER_FILTERS), start=1):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)  # 32, 64, 128, 256
        x = conv_bn_act(x, scaled(f, width), 3, activation="relu", name=f"dec{i}")
    out = layers.Conv2D(channels, 1, activation="sigmoid", dtype="float32", name="reconstruction")(
        x
    )
    return keras.Model(inputs, out, name="autoencoder"), encoder
