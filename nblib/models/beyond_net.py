"""The network of the beyond-the-papers ladder: a ResNet-18 (or paper 1's ResNet-50) trunk with
global pooling, optional sex input, augmentation beyond flips, and a robust standardised head
with its loss.
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models import resnet50
from nblib.models.layers import conv_bn_act, regression_output, scaled

# Augmentation beyond flips, drawn on the device while training (inactive at inference).
ROTATION_DEGREES = 10.0


ZOOM = 0.10  # +-10 % scale


SHIFT = 0.05  # +-5 % of the side


BRIGHTNESS = 0.10  # +-0.1 on the [0, 1] scale


CONTRAST = 0.20  # contrast factor in [0.8, 1.2]


HUBER_DELTA = 1.0  # in standard deviations of the training ages


SEX_UNITS, HEAD_UNITS = 16, 64


RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (filters, stride); two blocks each


def resnet18_trunk(x, width: float = 1.0, activation: str = "gelu"):
    """A ResNet-18 trunk (He et al. 2016: basic blocks of two 3x3 convolutions, 2-2-2-2), GELU.

    A quarter of ResNet-50's layers: on a CPU it trains faster per image and its graph is built
    several times faster, which is what lets a ladder fit the cpu profile's minutes.
    """
    x = conv_bn_act(x, scaled(64, width), 7, 2, activation=activation, name="stem")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for s, (filters, stride) in enumerate(RESNET18_STAGES, start=2):
        f = scaled(filters, width)
        for b in (1, 2):
            name, st = f"stage{s}_block{b}", stride if b == 1 else 1
            shortcut = x
            if st != 1 or x.shape[-1] != f:
                shortcut = conv_bn_act(x, f, 1, st, activation=None, name=f"{name}_0")
            y = conv_bn_act(x, f, 3, st, activation=activation, name=f"{name}_1")
            y = conv_bn_act(y, f, 3, 1, activation=None, name=f"{name}_2")
            x = layers.Activation(activation, name=f"{name}_out")(
                layers.Add(name=f"{name}_add")([shortcut, y])
            )
    return x


TRUNKS = {"resnet18": resnet18_trunk, "resnet50": resnet50.trunk}


def _augmentation(x):
    for layer in (
        layers.RandomRotation(ROTATION_DEGREES / 360.0, fill_mode="constant", name="rotate"),
        layers.RandomZoom((-ZOOM, ZOOM), fill_mode="constant", name="zoom"),
        layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", name="shift"),
        layers.RandomBrightness(BRIGHTNESS, value_range=(0.0, 1.0), name="brightness"),
        layers.RandomContrast(CONTRAST, value_range=(0.0, 1.0), name="contrast"),
    ):
        layer.dtype_policy = keras.DTypePolicy("float32")
        x = layer(x)
    return x


def build(
    recipe,
    image_size: int,
    width: float,
    *,
    mean: float,
    sd: float,
    name: str,
    backbone: str = "resnet18",
) -> keras.Model:
    """The rung's network: raw uint8 image (and sex) in, bone age in months out.

    Image -> [0, 1] -> flips (-> augmentation) -> trunk -> global average pooling
    (-> concatenated with a 16-unit embedding of sex) -> dense 64 GELU -> age. With
    ``recipe.robust`` the last dense layer predicts the standardised age ``z`` and a fixed
    rescaling turns it into months (``mean + sd * z``), so the saved model still answers in months.
    """
    image = keras.Input((image_size, image_size, 1), dtype="uint8", name="image")
    x = layers.Rescaling(1.0 / 255.0, dtype="float32", name="to_unit")(image)
    x = layers.RandomFlip("horizontal", dtype="float32", name="flip_lr")(x)
    x = layers.RandomFlip("vertical", dtype="float32", name="flip_ud")(x)
    if recipe.augment:
        x = _augmentation(x)
    x = TRUNKS[backbone](x, width)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    inputs = [image]
    if recipe.sex:
        sex = keras.Input((1,), name="sex")
        inputs.append(sex)
        x = layers.Concatenate(name="with_sex")(
            [x, layers.Dense(SEX_UNITS, activation="gelu", name="sex_embed")(sex)]
        )
    x = layers.Dense(HEAD_UNITS, activation="gelu", name="head")(x)
    if recipe.robust:
        z = layers.Dense(1, dtype="float32", name="z")(x)
        out = layers.Rescaling(sd, offset=mean, dtype="float32", name="age")(z)
    else:
        out = regression_output(x, bias=mean)
    return keras.Model(inputs if len(inputs) > 1 else image, out, name=name)


def standardized_huber(mean: float, sd: float):
    """Huber loss (delta = 1 SD) on the standardised age: robust to the label noise of bone age
    (readers differ by ~0.5 year) and to outliers, and scale-free across data sets."""

    def loss(y_true, y_pred):
        y_true = keras.ops.reshape(keras.ops.cast(y_true, "float32"), (-1,))
        y_pred = keras.ops.reshape(keras.ops.cast(y_pred, "float32"), (-1,))
        return keras.losses.huber((y_true - mean) / sd, (y_pred - mean) / sd, delta=HUBER_DELTA)

    loss.__name__ = "standardized_huber"
    return loss
