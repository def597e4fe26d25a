"""Architectures: the papers' structure and parameter counts at full size, tiny versions train."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nblib.models import autoencoder, baselines, bonet, inception_v4, resnet50


def _count(model, cls):
    return sum(type(layer).__name__ == cls for layer in model.layers)


def test_resnet50_is_the_papers_model():
    m = resnet50.build(256, 1.0)
    assert m.count_params() == 31_993_281  # DESIGN: ~32.0M
    assert m.get_layer("flatten").output.shape[1:] == (4 * 4 * 2048,)
    assert m.get_layer("dense256").kernel.shape == (
        32768,
        256,
    )  # 8.4M weights in the first dense layer
    assert [m.get_layer(f"dense{u}").units for u in (256, 128, 64, 32)] == [256, 128, 64, 32]
    assert (
        _count(m, "Conv2D") == 53 and _count(m, "Add") == 16
    )  # 1 + 16 x 3 + 4 shortcuts; 3+4+6+3 blocks
    assert _count(m, "AveragePooling2D") == 1 and _count(m, "GlobalAveragePooling2D") == 0
    acts = {
        layer.activation.__name__
        for layer in m.layers
        if hasattr(layer, "activation")
        and type(layer).__name__ in ("Activation", "Dense")
        and layer.name != "age"
    }
    assert acts == {"gelu"}
    assert m.get_layer("age").activation.__name__ == "linear"
    assert m.get_layer("stem_conv").kernel_size == (7, 7) and m.get_layer("stem_conv").strides == (
        2,
        2,
    )


def test_inception_v4_is_the_papers_model():
    m = inception_v4.build(256, 1.0)
    assert m.count_params() == 41_207_521  # DESIGN: ~41.2M
    names = [layer.name for layer in m.layers if type(layer).__name__ == "Concatenate"]
    assert sum(n.startswith("inception_a") and n.count("_") == 1 for n in names) == 4
    assert sum(n.startswith("inception_b") and n.count("_") == 1 for n in names) == 7
    assert sum(n.startswith("inception_c") and n.count("_") == 1 for n in names) == 3
    assert m.get_layer("gap").input.shape[1:] == (6, 6, 1536)
    assert _count(m, "Dropout") == 1 and m.get_layer("age").units == 1
    with pytest.raises(ValueError, match="at least 75 px"):
        inception_v4.build(64, 0.25)


def test_autoencoder_layout_and_shape():
    ae, enc = autoencoder.build(256, 1.0)
    assert ae.count_params() == 12_546_177  # DESIGN: ~12.5M
    assert enc.output.shape[1:] == (16, 16, 1024) and ae.output.shape[1:] == (256, 256, 1)
    assert [ae.get_layer(f"enc{i}_conv").filters for i in range(1, 5)] == [64, 128, 256, 512]
    assert [ae.get_layer(f"dec{i}_conv").filters for i in range(1, 5)] == [512, 256, 128, 64]
    assert ae.get_layer("reconstruction").activation.__name__ == "sigmoid"
    small, _ = autoencoder.build(32, 0.125)
    x = np.random.rand(2, 32, 32, 1).astype("float32")
    assert small.predict(x, verbose=0).shape == x.shape


def test_bonet_head():
    _, enc = autoencoder.build(64, 0.125)
    m = bonet.build(enc)
    assert [type(layer).__name__ for layer in m.layers[-5:]] == [
        "GlobalAveragePooling2D",
        "Flatten",
        "BatchNormalization",
        "Dense",
        "Dense",
    ]
    d10 = m.get_layer("head_dense10")
    assert d10.units == 10 and d10.activation.__name__ == "relu"
    assert float(d10.kernel_regularizer.l2) == pytest.approx(1e-4)
    assert all(layer.trainable for layer in m.layers)  # fine-tuned, not frozen


@pytest.mark.parametrize(
    "build",
    [
        lambda: resnet50.build(64, 0.125, output_bias=100.0),
        lambda: inception_v4.build(80, 0.125, output_bias=100.0),
        lambda: baselines.build("mobilenet", 64, None, 0.25, output_bias=100.0),
    ],
    ids=["resnet50", "inception_v4", "mobilenet"],
)
def test_tiny_models_train_a_step_and_predict(build):
    keras.utils.set_random_seed(0)
    m = build()
    assert float(m.get_layer("age").bias.numpy()[0]) == 100.0  # output starts at a typical age
    size = m.input_shape[1]
    x = np.random.rand(4, size, size, 3).astype("float32")
    y = np.array([20.0, 80.0, 120.0, 200.0], "float32")
    m.compile("adam", "msle", run_eagerly=True)
    loss = m.train_on_batch(x, y)
    assert np.isfinite(loss)
    p = m.predict(x, verbose=0)
    assert p.shape == (4, 1) and np.isfinite(p).all()


def test_baseline_sizes_and_offline_weights():
    with pytest.raises(ValueError, match="at least 71 px"):
        baselines.build("xception", 64, None)
    with pytest.raises(ValueError, match="Unknown baseline"):
        baselines.build("resnet18", 96, None)
    with pytest.raises(ValueError, match="alpha"):
        baselines.build("mobilenet", 96, "imagenet", width=0.3)
