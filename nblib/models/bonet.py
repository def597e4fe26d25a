"""AE-BoNet (paper 2): the autoencoder's encoder, fine-tuned, under a small regression head.

Head: global average pooling -> flatten -> batch norm -> dense 10 (ReLU, L2 1e-4) -> dense 1
(linear). :func:`build` loads the encoder saved by notebook 05, or starts it at random: the
ablation that measures what pretraining buys.
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
    *,
    image_size: int = 256,
    width: float = 1.0,
    weights: Path | str | None = None,
    flips: bool | str = True,
    output_bias: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """AE-BoNet on raw uint8 gray images; its encoder is trainable (fine-tuned, not frozen).

    ``weights`` is the encoder's weights file written by ``05_autoencoder_pretraining``, or
    ``None`` for a randomly initialised encoder: the ablation that measures what pretraining
    buys, named ``ae_bonet_random_init`` unless ``name`` says otherwise.
    """
    if weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(
            f"Encoder weights {weights} not found: run notebooks/05_autoencoder_pretraining.ipynb "
            "first (same profile and output_dir), e.g. ./run_all.sh --only 05"
        )
    encoder = autoencoder.encoder(image_size=image_size, width=width)
    if weights is not None:
        _load_encoder(encoder, Path(weights), image_size, width)
    encoder.trainable = True
    inputs, x = image_input(image_size, channels=1, flips=flips)
    if name is None:
        name = "ae_bonet" if weights is not None else "ae_bonet_random_init"
    return keras.Model(inputs, head(encoder(x), output_bias=output_bias), name=name)


def _load_encoder(encoder: keras.Model, weights_path: Path, image_size: int, width: float) -> None:
    """Load notebook 05's encoder weights, naming the file and the likely cause when they do not fit."""
    try:
        encoder.load_weights(weights_path)
    except ValueError as exc:
        raise ValueError(
            f"Encoder weights {weights_path} do not fit an encoder at {image_size} px and width "
            f"{width} (were they made with another profile?): {exc}"
        ) from None
