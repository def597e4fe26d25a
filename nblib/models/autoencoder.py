"""Paper 2's convolutional autoencoder, whose encoder AE-BoNet reuses.

Encoder: four blocks of (3x3 convolution, batch norm, ReLU, 2x2 max pooling) with 64, 128, 256
and 512 filters, then a 1024-filter bottleneck block (convolution, batch norm, ReLU). Decoder, the
mirror image: four blocks of (2x upsampling, 3x3 convolution, batch norm, ReLU) with 512, 256, 128
and 64 filters, and a 1x1 convolution with a sigmoid back to one channel. At 256 px and width 1
this has 12.55M parameters (the paper gives no count).
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models.layers import conv_bn_act, image_input, scaled

ENCODER_FILTERS = (64, 128, 256, 512)
BOTTLENECK = 1024
ENCODER = "encoder"  # the encoder's name as a layer of the autoencoder


def encoder(*, image_size: int = 256, width: float = 1.0) -> keras.Model:
    """The encoder alone, on ``[0, 1]`` float images ``[S, S, 1]``: what AE-BoNet fine-tunes."""
    if image_size % 16:
        raise ValueError(
            f"The autoencoder pools four times: image_size must be a multiple of 16, got {image_size}"
        )
    inputs = keras.Input((image_size, image_size, 1), name="unit_image")
    x = inputs
    for i, f in enumerate(ENCODER_FILTERS, start=1):
        x = conv_bn_act(x, scaled(f, width), 3, activation="relu", name=f"enc{i}")
        x = layers.MaxPooling2D(2, name=f"enc{i}_pool")(x)  # 256 px: 128, 64, 32, 16
    code = conv_bn_act(
        x, scaled(BOTTLENECK, width), 3, activation="relu", name="bottleneck"
    )  # 16x16x1024
    return keras.Model(inputs, code, name=ENCODER)


def build(*, image_size: int = 256, width: float = 1.0, name: str = "autoencoder") -> keras.Model:
    """The autoencoder; its encoder is its layer ``"encoder"`` (:data:`ENCODER`), weights shared.

    The autoencoder takes a raw uint8 gray image ``[S, S, 1]`` and reconstructs it in ``[0, 1]``
    (its training target is the image divided by 255). No flips: the reconstruction target
    would have to be flipped alike, and paper 2 states no augmentation.
    """
    enc = encoder(image_size=image_size, width=width)
    inputs, x = image_input(image_size, channels=1, flips=False)
    x = enc(x)
    for i, f in enumerate(reversed(ENCODER_FILTERS), start=1):
        x = layers.UpSampling2D(2, name=f"dec{i}_up")(x)  # 32, 64, 128, 256
        x = conv_bn_act(x, scaled(f, width), 3, activation="relu", name=f"dec{i}")
    out = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="reconstruction")(x)
    return keras.Model(inputs, out, name=name)


def encoder_of(autoencoder: keras.Model) -> keras.Model:
    """The encoder inside an autoencoder from :func:`build` (the same weights, not a copy)."""
    return autoencoder.get_layer(ENCODER)
