"""Paper 2's Table 5 baselines: keras.applications backbones under the AE-BoNet head.

``weights="imagenet"`` downloads the ImageNet weights the way Keras does (cached in ~/.keras);
without network access that fails with a clear message, and ``weights=None`` trains from scratch.
"""

from __future__ import annotations

import keras

from nblib.models.bonet import head
from nblib.models.layers import image_input

BACKBONES = {
    "xception": ("Xception", keras.applications.Xception, 71),
    "vgg16": ("VGG16", keras.applications.VGG16, 32),
    "inception_v3": ("InceptionV3", keras.applications.InceptionV3, 75),
    "mobilenet": ("MobileNet", keras.applications.MobileNet, 32),
}
MOBILENET_ALPHAS = (0.25, 0.5, 0.75, 1.0)
VGG_MEANS_BGR = [-103.939, -116.779, -123.68]  # subtracted after scaling to 0-255


def build(
    *,
    backbone: str,
    image_size: int,
    width: float = 1.0,
    weights: str | None = "imagenet",
    flips: bool | str = True,
    output_bias: float = 0.0,
    name: str | None = None,
) -> keras.Model:
    """``backbone`` in xception, vgg16, inception_v3, mobilenet, on raw uint8 gray images.

    ``width`` is MobileNet's alpha (the other backbones have no width and ignore it). Inputs are
    scaled to each backbone's expected range inside the model, so all take the same pipeline.
    The model is named ``{backbone}_{image_size}`` unless ``name`` says otherwise.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"Unknown baseline {backbone!r}; choose from {', '.join(BACKBONES)}")
    label, app, min_size = BACKBONES[backbone]
    if image_size < min_size:
        raise ValueError(f"{label} needs images of at least {min_size} px, got {image_size}")
    weights = None if weights in (None, "none") else weights
    kwargs = {}
    if backbone == "mobilenet":
        if weights and width not in MOBILENET_ALPHAS:
            raise ValueError(
                f"ImageNet MobileNet weights exist for alpha {MOBILENET_ALPHAS}, got {width}"
            )
        kwargs["alpha"] = width
    inputs, x = image_input(image_size, channels=3, flips=flips)  # [0, 1], three channels
    if backbone == "vgg16":
        # keras.applications.vgg16.preprocess_input ("caffe"): 0-255, BGR, minus the ImageNet
        # channel means. A gray image tiled to three channels needs no BGR swap.
        scaled = keras.layers.Rescaling(255.0, offset=VGG_MEANS_BGR, name="caffe")(x)
    else:  # "tf" preprocessing of Xception, InceptionV3 and MobileNet: [-1, 1]
        scaled = keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus1_1")(x)
    try:
        trunk = app(
            include_top=False, weights=weights, input_shape=(image_size, image_size, 3), **kwargs
        )
    except Exception as exc:  # noqa: BLE001 - any download failure gets the same plain advice
        if weights:
            raise RuntimeError(
                f"Could not get the ImageNet weights of {label} ({type(exc).__name__}: {exc}). Keras downloads "
                "them on first use; offline, set baseline_weights: none to train from scratch."
            ) from None
        raise
    features = trunk(scaled)
    return keras.Model(
        inputs, head(features, output_bias=output_bias), name=name or f"{backbone}_{image_size}"
    )
