"""AE-BoNet hand-over from pretraining, and the keras.applications baselines of Table 5."""

from __future__ import annotations

import numpy as np
import pytest

from nblib.core import results
from nblib.models import autoencoder, baselines, bonet


def test_encoder_of_another_width_is_refused_plainly(tmp_path):
    encoder = autoencoder.encoder(image_size=32, width=0.125)
    path = tmp_path / "encoder.weights.h5"
    with results.atomic_path(path) as tmp:
        encoder.save_weights(tmp)
    with pytest.raises(ValueError, match="another profile"):
        bonet.build(image_size=32, width=0.25, weights=path)


def test_offline_imagenet_weights_give_plain_advice(monkeypatch):
    def offline(**kwargs):
        raise OSError("URL fetch failure: no network")

    label, _, min_size = baselines.BACKBONES["vgg16"]
    monkeypatch.setitem(baselines.BACKBONES, "vgg16", (label, offline, min_size))
    with pytest.raises(RuntimeError, match="baseline_weights: none"):
        baselines.build(backbone="vgg16", image_size=32, weights="imagenet")


def test_vgg16_from_scratch_trains_a_step_on_gray_images_tiled():
    m = baselines.build(backbone="vgg16", image_size=32, weights=None, output_bias=100.0)
    assert m.count_params() == 14_721_877  # VGG16's 14,714,688 convolution weights + the head
    assert m.input_shape[1:] == (32, 32, 1)  # raw gray; the model tiles it to three channels
    assert m.get_layer("gray_to_rgb").output.shape[1:] == (32, 32, 3)
    x = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 1), dtype=np.uint8)
    m.compile("adam", "mse", run_eagerly=True)
    assert np.isfinite(m.train_on_batch(x, np.array([50.0, 90.0, 130.0, 170.0], "float32")))
    with pytest.raises(ValueError, match="at least 75 px"):
        baselines.build(backbone="inception_v3", image_size=64, weights=None)


def test_backbone_inputs_are_preprocessed_as_keras_applications_do():
    import keras

    gray = np.random.default_rng(2).random((2, 32, 32, 1)).astype("float32")
    x = np.repeat(gray, 3, axis=-1)
    vgg = baselines.build(backbone="vgg16", image_size=32, weights=None)
    ours = np.asarray(vgg.get_layer("caffe")(x))
    ref = keras.applications.vgg16.preprocess_input(x * 255.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-3)
    mobilenet = baselines.build(backbone="mobilenet", image_size=32, weights=None, width=0.25)
    ref = keras.applications.mobilenet.preprocess_input(x * 255.0)
    np.testing.assert_allclose(np.asarray(mobilenet.get_layer("to_minus1_1")(x)), ref, atol=1e-5)
