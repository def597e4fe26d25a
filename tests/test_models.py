"""The registry of models; paper 2's architectures at full size; tiny versions of every model
train a step on raw images.

Paper 1's two architectures are pinned in test_models_paper1.py."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nblib.models import autoencoder, baselines, registry


def _count(model, cls):
    return sum(type(layer).__name__ == cls for layer in model.layers)


def test_autoencoder_layout_and_shape():
    ae = registry.build("autoencoder", image_size=256, width=1.0)
    enc = autoencoder.encoder_of(ae)
    assert ae.count_params() == 12_546_177  # about 12.5M
    assert enc.output.shape[1:] == (16, 16, 1024) and ae.output.shape[1:] == (256, 256, 1)
    assert [enc.get_layer(f"enc{i}_conv").filters for i in range(1, 5)] == [64, 128, 256, 512]
    assert [ae.get_layer(f"dec{i}_conv").filters for i in range(1, 5)] == [512, 256, 128, 64]
    assert ae.get_layer("reconstruction").activation.__name__ == "sigmoid"
    small = registry.build("autoencoder", image_size=32, width=0.125)
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    out = small.predict(x, verbose=0)
    assert out.shape == x.shape and out.dtype == np.float32 and 0 <= out.min() <= out.max() <= 1


def test_bonet_head():
    m = registry.build("ae_bonet", image_size=64, width=0.125)
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


TINY = {  # the smallest settings each regressor is tested at
    "resnet50": {"image_size": 64, "width": 0.125},
    "inception_v4": {"image_size": 80, "width": 0.125},
    "ae_bonet": {"image_size": 32, "width": 0.125},
    "mobilenet": {"image_size": 64, "width": 0.25, "weights": None},
}


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_models_train_a_step_and_predict(name):
    keras.utils.set_random_seed(0)
    m = registry.build(name, **TINY[name], output_bias=100.0)
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
        registry.build("xception", image_size=64, width=1.0, weights=None)
    with pytest.raises(ValueError, match="Unknown baseline"):
        baselines.build(backbone="resnet18", image_size=96, weights=None)
    with pytest.raises(ValueError, match="alpha"):
        registry.build("mobilenet", image_size=96, width=0.3, weights="imagenet")


def test_registry_holds_every_model_under_one_keyword_only_signature():
    assert set(registry.MODELS) == {
        "resnet50",
        "inception_v4",
        "autoencoder",
        "ae_bonet",
        *baselines.BACKBONES,
    }
    for name in registry.MODELS:
        assert "name" in registry.options(name), name  # every model can be renamed
    assert {"output_bias", "flips", "weights"} <= set(registry.options("ae_bonet"))
    assert "output_bias" not in registry.options("autoencoder")  # it reconstructs, no age
    with pytest.raises(TypeError):
        registry.MODELS["resnet50"](64, 0.125)  # sizes are never positional
    with pytest.raises(ValueError, match="Unknown model 'resnet18'; choose from resnet50"):
        registry.build("resnet18", image_size=64, width=0.125)
    with pytest.raises(ValueError, match="'autoencoder' takes no option output_bias"):
        registry.build("autoencoder", image_size=32, width=0.125, output_bias=1.0)


def test_same_seed_builds_the_same_model_and_another_seed_does_not():
    def weights(seed):
        keras.utils.set_random_seed(seed)
        m = registry.build("inception_v4", **TINY["inception_v4"], name="again")
        assert m.name == "again"
        return m.get_weights()

    first, same, other = weights(3), weights(3), weights(4)
    assert all(np.array_equal(a, b) for a, b in zip(first, same, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))
