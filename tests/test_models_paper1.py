"""Paper 1's two architectures: at width 1 and 256 px exactly the published layout (stage shapes,
layer counts, parameter counts); smaller widths and sizes scale as documented."""

from __future__ import annotations

from collections import Counter

import keras
import numpy as np
import pytest

from nblib.models import inception_v4, layers, resnet50


def _counts(model) -> Counter:
    return Counter(type(layer).__name__ for layer in model.layers)


def _shape(model, name):
    return tuple(model.get_layer(name).output.shape[1:])


@pytest.fixture(scope="module")
def resnet():
    return resnet50.build(image_size=256, width=1.0)


@pytest.fixture(scope="module")
def inception():
    return inception_v4.build(image_size=256, width=1.0)


def test_resnet50_parameter_count_is_pinned(resnet):
    # 32,019,841 parameters (keras.applications' ResNet50 trunk, 23,587,712,
    # plus the 8,432,129 of the dense head). 53,120 of them are BatchNorm moving statistics; the
    # convolutions keep their bias, as in the Keras code paper 1 describes (26,560 parameters).
    assert resnet.count_params() == 32_019_841
    assert layers.count_params(resnet) == 32_019_841
    assert resnet.get_layer("stem_conv").use_bias
    # The course code's other Keras defaults: glorot_uniform kernels, batch-norm epsilon 1e-3.
    conv = resnet.get_layer("stage3_block2_2_conv")
    assert type(conv.kernel_initializer).__name__ == "GlorotUniform"
    assert resnet.get_layer("stage3_block2_2_bn").epsilon == pytest.approx(1e-3)
    assert type(resnet.get_layer("dense256").kernel_initializer).__name__ == "GlorotUniform"
    assert sum(int(np.prod(w.shape)) for w in resnet.non_trainable_weights) == 53_120
    # The first dense layer alone: 4 x 4 x 2048 inputs x 256 units + 256 biases (~8.4M).
    assert resnet.get_layer("dense256").count_params() == 32_768 * 256 + 256


def test_resnet50_stage_shapes(resnet):
    assert _shape(resnet, "stem_pad") == (262, 262, 3)  # ZeroPadding2D(3)
    assert _shape(resnet, "stem_conv") == (128, 128, 64)  # 7x7/64, stride 2, valid
    assert _shape(resnet, "stem_pool") == (63, 63, 64)  # max pooling 3x3, stride 2
    assert _shape(resnet, "stage2_block3_out") == (63, 63, 256)  # stride 1
    assert _shape(resnet, "stage3_block4_out") == (32, 32, 512)
    assert _shape(resnet, "stage4_block6_out") == (16, 16, 1024)
    assert _shape(resnet, "stage5_block3_out") == (8, 8, 2048)
    assert _shape(resnet, "avg_pool") == (4, 4, 2048)  # 2x2 average pooling, not global
    assert _shape(resnet, "flatten") == (32_768,)


def test_resnet50_layer_structure(resnet):
    c = _counts(resnet)
    # 3/4/6/3 bottlenecks of three convolutions, 4 projection shortcuts, the 7x7 stem: 53 conv-BN.
    assert c["Conv2D"] == 53 and c["BatchNormalization"] == 53 and c["Add"] == 16
    assert c["MaxPooling2D"] == 1 and c["AveragePooling2D"] == 1
    assert c["GlobalAveragePooling2D"] == 0 and c["Dense"] == 5
    for stage, blocks in ((2, 3), (3, 4), (4, 6), (5, 3)):
        names = {
            layer.name.split("_")[1]
            for layer in resnet.layers
            if layer.name.startswith(f"stage{stage}_")
        }
        assert len(names) == blocks, stage
    # bottleneck 1x1 -> 3x3 -> 1x1 with [64, 64, 256] ... [512, 512, 2048]; shortcuts 1x1 conv + BN
    for stage, (f1, f2, f3), stride in ((2, (64, 64, 256), 1), (5, (512, 512, 2048), 2)):
        convs = [resnet.get_layer(f"stage{stage}_block1_{i}_conv") for i in range(4)]
        assert [c.filters for c in convs] == [f3, f1, f2, f3]
        assert [c.kernel_size for c in convs] == [(1, 1), (1, 1), (3, 3), (1, 1)]
        assert convs[0].strides == convs[1].strides == (stride, stride)
    stem = resnet.get_layer("stem_conv")
    assert stem.kernel_size == (7, 7) and stem.strides == (2, 2) and stem.padding == "valid"
    assert [resnet.get_layer(f"dense{u}").units for u in (256, 128, 64, 32)] == [256, 128, 64, 32]


def test_every_hidden_activation_is_gelu_and_the_output_linear(resnet, inception):
    for model in (resnet, inception):
        acts = {
            layer.activation.__name__
            for layer in model.layers
            if type(layer).__name__ in ("Activation", "Dense") and layer.name != "age"
        }
        assert acts == {"gelu"}, model.name
        out = model.get_layer("age")
        assert out.units == 1 and out.activation.__name__ == "linear"


def test_inception_v4_parameter_count_is_pinned(inception):
    # 41,175,937 parameters. As in the original TF-slim code and its usual
    # Keras port, convolutions have no bias and BatchNorm no scale (gamma); 63,168 BatchNorm moving
    # statistics are the non-trainable part; the output layer is 1,536 + 1.
    assert inception.count_params() == 41_175_937
    bn = inception.get_layer("stem_1_bn")
    assert not bn.scale and bn.center and not inception.get_layer("stem_1_conv").use_bias
    assert sum(int(np.prod(w.shape)) for w in inception.non_trainable_weights) == 63_168
    assert inception.get_layer("age").count_params() == 1_537


def test_inception_v4_stage_shapes_and_blocks(inception):
    assert _shape(inception, "stem_6") == (29, 29, 384)
    assert _shape(inception, "inception_a4") == (29, 29, 384)
    assert _shape(inception, "reduction_a") == (14, 14, 1024)
    assert _shape(inception, "inception_b7") == (14, 14, 1024)
    assert _shape(inception, "reduction_b") == (6, 6, 1536)
    assert _shape(inception, "inception_c3") == (6, 6, 1536)
    assert _shape(inception, "gap") == (1536,) and _shape(inception, "flatten") == (1536,)
    c = _counts(inception)
    # stem 11 + 4 x 7 (A) + 4 (red. A) + 7 x 10 (B) + 6 (red. B) + 3 x 10 (C) = 149 conv-BN-GELU
    assert c["Conv2D"] == c["BatchNormalization"] == c["Activation"] == 149
    assert c["Dropout"] == 1 and c["Dense"] == 1 and c["GlobalAveragePooling2D"] == 1
    blocks = [layer.name for layer in inception.layers if type(layer).__name__ == "Concatenate"]
    for kind, n in (("inception_a", 4), ("inception_b", 7), ("inception_c", 3)):
        assert sum(b.startswith(kind) and b.count("_") == 1 for b in blocks) == n, kind
    # Reduction-A with k, l, m, n = 192, 224, 256, 384
    got = [
        inception.get_layer(f"reduction_a_{b}_conv").filters for b in ("b2_1", "b2_2", "b2_3", "b1")
    ]
    assert got == [192, 224, 256, 384]
    assert inception.get_layer("dropout").rate == pytest.approx(0.2)


def test_minimum_input_sizes_are_refused_in_plain_words():
    with pytest.raises(ValueError, match="at least 75 px.*image_size=74"):
        inception_v4.build(image_size=74, width=0.125)
    assert _shape(inception_v4.build(image_size=75, width=0.125), "gap") == (
        192,
    )  # 1536 x 1/8, from 1x1
    with pytest.raises(ValueError, match="at least 32 px"):
        resnet50.build(image_size=31, width=0.125)


def test_width_scales_every_convolution_and_keeps_the_head():
    assert layers.scaled(64, 0.25) == 16 and layers.scaled(2048, 0.25) == 512
    assert layers.scaled(96, 0.125) == 12 and layers.scaled(64, 0.01) == 4  # never below 4
    m = resnet50.build(image_size=128, width=0.25)
    assert m.get_layer("stem_conv").filters == 16
    assert _shape(m, "stage5_block3_out") == (4, 4, 512)
    assert _shape(m, "flatten") == (2 * 2 * 512,)
    assert [m.get_layer(f"dense{u}").units for u in (256, 128, 64, 32)] == [256, 128, 64, 32]
    assert m.count_params() == 2_068_705


def test_mixed_precision_keeps_the_output_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        m = resnet50.build(image_size=64, width=0.125, output_bias=120.0)
        assert m.get_layer("stem_conv").compute_dtype == "float16"
        assert m.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
