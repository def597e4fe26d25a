"""Paper 1's ResNet-50: GELU everywhere, 2x2 average pooling, a 256-128-64-32 dense head.

The residual trunk is the standard ResNet-50 (He et al. 2016): bottleneck blocks (1x1, 3x3, 1x1)
in four stages of 3/4/6/3 blocks (a convolutional block followed by 2/3/5/2 identity blocks).
Paper 1 departs from keras.applications in three places, reproduced here: GELU instead of ReLU,
no padding before the stage-1 max pooling, and a 2x2 *average pooling* followed by Flatten (not
global pooling) feeding four dense layers. At 256 px the flatten is 4x4x2048, so the first dense
layer alone holds 8.4M weights; the model has 32.0M parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models.layers import conv_bn_act, regression_output, scaled

HEAD = (256, 128, 64, 32)
STAGES = (  # (filters, identity blocks after the conv block, stride of the conv block)
    ((64, 64, 256), 2, 1),
    ((128, 128, 512), 3, 2),
    ((256, 256, 1024), 5, 2),
    ((512, 512, 2048), 2, 2),
)


def _block(x, filters, strides, conv_shortcut: bool, name: str, act: str):
    f1, f2, f3 = filters
    if conv_shortcut:
        shortcut = conv_bn_act(x, f3, 1, strides=strides, activation=None, name=f"{name}_0")
    else:
        shortcut = x
    x = conv_bn_act(x, f1, 1, strides=strides, padding="valid", activation=act, name=f"{name}_1")
    x = conv_bn_act(x, f2, 3, padding="same", activation=act, name=f"{name}_2")
    x = conv_bn_act(x, f3, 1, padding="valid", activation=None, name=f"{name}_3")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation(act, name=f"{name}_out")(x)


def build(
    image_size: int = 256,
    width: float = 1.0,
    channels: int = 3,
    name: str = "resnet50_gelu",
    activation: str = "gelu",
    output_bias: float = 0.0,
) -> keras.Model:
    """The paper's GELU ResNet-50 regressor at ``image_size`` px and width multiplier ``width``.

    ``width`` scales every convolution's filters (the dense head stays 256-128-64-32); width 1 at
    256 px is exactly the paper's model.
    """
    if image_size < 32:
        raise ValueError(f"ResNet-50 needs images of at least 32 px, got {image_size}")
    inputs = keras.Input((image_size, image_size, channels), name="image")
    x = layers.ZeroPadding2D(3, name="stem_pad")(inputs)
    x = conv_bn_act(
        x, scaled(64, width), 7, strides=2, padding="valid", activation=activation, name="stem"
    )  # 256 px: 128x128x64
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)  # 63x63x64
    for s, (filters, n_identity, stride) in enumerate(STAGES, start=2):
        f = tuple(scaled(v, width) for v in filters)
        x = _block(x, f, stride, True, f"stage{s}_block1", activation)
        for b in range(n_identity):
            x = _block(x, f, 1, False, f"stage{s}_block{b + 2}", activation)
        # stage 2: 63x63x256, stage 3: 32x32x512, stage 4: 16x16x1024, stage 5: 8x8x2048
    if x.shape[1] >= 2:
        x = layers.AveragePooling2D(2, name="avg_pool")(x)  # 4x4x2048
    x = layers.Flatten(name="flatten")(x)  # 32,768
    for units in HEAD:
        x = layers.Dense(units, activation=activation, name=f"dense{units}")(x)
    return keras.Model(inputs, regression_output(x, bias=output_bias), name=name)
