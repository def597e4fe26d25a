"""AE-BoNet (paper 2): the autoencoder's encoder, fine-tuned, under a small regression head.

Head: global average pooling -> flatten -> batch norm -> dense 10 (ReLU, L2 1e-4) -> dense 1
(linear). ``from_pretrained`` loads the encoder saved by notebook 05; ``random_init`` is the same
network from scratch, the ablation that measures what pretraining buys.
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from nblib.models import autoencoder
from nblib.models.layers import image_input, regression_output


def head(features, name: str = "head", output_bias: float = 0.0):
    """Paper 2's regression head on a feature map."""
    x = layers.GlobalAveragePooling2D(name=f"{name}_gap")(features)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.Dense(
        10,
        activation="relu",
        kernel_regularizer=keras.regularizers.L2(1e-4),
        name=f"{name}_dense10",
    )(x)
    return regression_output(x, bias=output_bias)


def build(
    encoder: keras.Model, *, flips: bool = True, output_bias: float = 0.0, name: str = "ae_bonet"
) -> keras.Model:
    """AE-BoNet on ``encoder`` (trainable: fine-tuned, not frozen), taking raw uint8 gray images."""
    encoder.trainable = True
    inputs, x = image_input(encoder.input.shape[1], channels=1, flips=flips)
    return keras.Model(inputs, head(encoder(x), output_bias=output_bias), name=name)


def from_pretrained(
    weights_path: Path | str, image_size: int, width: float, *, output_bias: float = 0.0
) -> keras.Model:
    """AE-BoNet with the encoder weights written by ``05_autoencoder_pretraining``."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise FileNotFoundError(
            f"Encoder weights {weights_path} not found: run notebooks/05_autoencoder_pretraining.ipynb first "
            "(same profile and output_dir), e.g. ./run_all.sh --only 05"
        )
    encoder = autoencoder.encoder(image_size, width)
    try:
        encoder.load_weights(weights_path)
    except ValueError as exc:
        raise ValueError(
            f"Encoder weights {weights_path} do not fit an encoder at {image_size} px and width "
            f"{width} (were they made with another profile?): {exc}"
        ) from None
    return build(encoder, output_bias=output_bias)


def random_init(image_size: int, width: float, *, output_bias: float = 0.0) -> keras.Model:
    """The same AE-BoNet with a randomly initialised encoder."""
    encoder = autoencoder.encoder(image_size, width)
    return build(encoder, output_bias=output_bias, name="ae_bonet_random_init")
