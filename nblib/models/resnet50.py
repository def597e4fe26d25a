"""Paper 1's ResNet-50: GELU everywhere, 2x2 average pooling, a 256-128-64-32 dense head.

The residual trunk is the standard ResNet-50 (He et al. 2016): bottleneck blocks (1x1, 3x3, 1x1)
in four stages of 3/4/6/3 blocks (a convolutional block followed by 2/3/5/2 identity blocks).
Paper 1 departs from keras.applications in three places, reproduced here: GELU instead of ReLU,
no padding before the stage-1 max pooling, and a 2x2 *average pooling* followed by Flatten (not
global pooling) feeding four dense layers. At 256 px the flatten is 4x4x2048, so the first dense
layer alone holds 8.4M weights; the model has 32,019,841 parameters.

Paper 1's description of the network follows, sentence for sentence, the widely copied Keras
ResNet-50 of the deeplearning.ai convolutional-networks course ("Residual Networks": zero padding
(3, 3), "three sets of filters of size [64, 64, 256]", a (2, 2) average pooling, flatten, dense).
Where the paper's text is silent, this module takes that code's choices, which are Keras'
defaults: convolutions keep their bias (26,560 of the parameters), kernels start from
``glorot_uniform``, and batch norm uses epsilon 1e-3. (The course's later revision draws the
identity blocks' kernels from ``random_uniform(-0.05, 0.05)`` with one fixed seed for every layer;
we keep the earlier, more widely copied ``glorot_uniform`` and seed the whole model instead.)
"""

from __future__ import annotations

import keras
from keras import layers

from nblib.models.layers import conv_bn_act, image_input, regression_output, scaled

HEAD = (256, 128, 64, 32)
STAGES = (  # (filters, identity blocks after the conv block, stride of the conv block)
    ((64, 64, 256), 2, 1),
    ((128, 128, 512), 3, 2),
    ((256, 256, 1024), 5, 2),
    ((512, 512, 2048), 2, 2),
)


INITIALIZER = "glorot_uniform"  # Keras' default, as in the course code paper 1 describes
BN_EPSILON = 1e-3  # Keras' default, likewise (keras.applications' ResNet50 uses 1.001e-5)


def _conv(x, filters, kernel_size, strides=1, padding="valid", activation=None, name=""):
    """Conv2D (with bias) -> BatchNorm -> activation, with the course code's Keras defaults."""
    return conv_bn_act(
        x,
        filters,
        kernel_size,
        strides,
        padding,
        activation,
        name,
        use_bias=True,
        initializer=INITIALIZER,
        epsilon=BN_EPSILON,
    )


def _block(x, filters, strides, conv_shortcut: bool, name: str, act: str):
    """Bottleneck 1x1 -> 3x3 -> 1x1; the convolutional block adds a 1x1 conv + BN shortcut."""
    f1, f2, f3 = filters
    if conv_shortcut:
        shortcut = _conv(x, f3, 1, strides=strides, name=f"{name}_0")
    else:
        shortcut = x
    x = _conv(x, f1, 1, strides=strides, activation=act, name=f"{name}_1")
    x = _conv(x, f2, 3, padding="same", activation=act, name=f"{name}_2")
    x = _conv(x, f3, 1, name=f"{name}_3")
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation(act, name=f"{name}_out")(x)


def trunk(x, width: float = 1.0, *, activation: str = "gelu"):
    """The residual trunk on image tensor ``x`` (stem, stages 2-5); returns the last feature map."""
    x = layers.ZeroPadding2D(3, name="stem_pad")(x)
    x = _conv(x, scaled(64, width), 7, strides=2, activation=activation, name="stem")
    # 256 px: 128x128x64
    x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)  # 63x63x64
    for s, (filters, n_identity, stride) in enumerate(STAGES, start=2):
        f = tuple(scaled(v, width) for v in filters)
        x = _block(x, f, stride, True, f"stage{s}_block1", activation)
        for b in range(n_identity):
            x = _block(x, f, 1, False, f"stage{s}_block{b + 2}", activation)
        # stage 2: 63x63x256, stage 3: 32x32x512, stage 4: 16x16x1024, stage 5: 8x8x2048
    return x


def build(
    *,
    image_size: int = 256,
    width: float = 1.0,
    channels: int = 3,
    flips: bool | str = True,
    activation: str = "gelu",
    output_bias: float = 0.0,
    name: str = "resnet50_gelu",
) -> keras.Model:
    """The paper's GELU ResNet-50 regressor at ``image_size`` px and width multiplier ``width``.

    ``width`` scales every convolution's filters (the dense head stays 256-128-64-32); width 1 at
    256 px is exactly the paper's model. Below 37 px the last stage is 1x1 and the 2x2 average
    pooling is left out (it would have nothing to pool). ``output_bias`` starts the linear output
    at a typical age (the training mean) without changing the architecture. The input is a raw
    uint8 gray image; :func:`~nblib.models.layers.image_input` scales it, flips it at random
    while training (``flips``) and repeats it to ``channels`` channels.
    """
    if image_size < 32:
        raise ValueError(f"ResNet-50 needs images of at least 32 px, got {image_size}")
    inputs, x = image_input(image_size, channels, flips)
    x = trunk(x, width, activation=activation)
    if x.shape[1] >= 2:
        x = layers.AveragePooling2D(2, name="avg_pool")(x)  # 4x4x2048
    x = layers.Flatten(name="flatten")(x)  # 32,768
    for units in HEAD:
        x = layers.Dense(
            units, activation=activation, kernel_initializer=INITIALIZER, name=f"dense{units}"
        )(x)
    return keras.Model(inputs, regression_output(x, bias=output_bias), name=name)
