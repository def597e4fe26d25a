"""Paper 2's architectures at full size; tiny versions of every model train a step on raw images.

Paper 1's two architectures are pinned in test_models_paper1.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nblib.models import autoencoder, baselines, bonet, inception_v4, resnet50


def _count(model, cls):
    return sum(type(layer).__name__ == cls for layer in model.layers)


def test_autoencoder_layout_and_shape():
    ae, enc = autoencoder.build(256, 1.0)
    assert ae.count_params() == 12_546_177  # DESIGN: ~12.5M
    assert enc.output.shape[1:] == (16, 16, 1024) and ae.output.shape[1:] == (256, 256, 1)
    assert [enc.get_layer(f"enc{i}_conv").filters for i in range(1, 5)] == [64, 128, 256, 512]
    assert [ae.get_layer(f"dec{i}_conv").filters for i in range(1, 5)] == [512, 256, 128, 64]
    assert ae.get_layer("reconstruction").activation.__name__ == "sigmoid"
    small, _ = autoencoder.build(32, 0.125)
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    out = small.predict(x, verbose=0)
    assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1


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
        lambda: baselines.build("mobilenet", 64, weights=None, width=0.25, output_bias=100.0),
    ],
    ids=["resnet50", "inception_v4", "mobilenet"],
)
def test_tiny_models_train_a_step_and_predict(build):
    keras.utils.set_random_seed(0)
    m = build()
    assert float(m.get_layer("age").bias.numpy()[0]) == 100.0  # output starts at a typical age
    size = m.input_shape[1]
    assert m.input_shape[1:] == (size, size, 1) and m.inputs[0].dtype == "uint8"  # raw gray images
    x = np.random.default_rng(0).integers(0, 256, (4, size, size, 1), dtype=np.uint8)
    y = np.array([20.0, 80.0, 120.0, 200.0], "float32")
    m.compile("adam", "msle", run_eagerly=True)
    loss = m.train_on_batch(x, y)
    assert np.isfinite(loss)
    p = m.predict(x, verbose=0)
    assert p.shape == (4, 1) and np.isfinite(p).all()


def test_baseline_sizes_and_offline_weights():
    with pytest.raises(ValueError, match="at least 71 px"):
        baselines.build("xception", 64, weights=None)
    with pytest.raises(ValueError, match="Unknown baseline"):
        baselines.build("resnet18", 96, weights=None)
    with pytest.raises(ValueError, match="alpha"):
        baselines.build("mobilenet", 96, weights="imagenet", width=0.3)
