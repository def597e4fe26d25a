"""Paper 2's autoencoder: layout and size, and the reconstruction metrics of its pretraining."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from nblib.models import autoencoder
from nblib.train import pretraining


def test_parameter_counts_are_pinned():
    # 256 px, width 1: encoder 6,275,392 + decoder 6,270,785.
    ae = autoencoder.build(image_size=256, width=1.0)
    enc = autoencoder.encoder_of(ae)
    assert (ae.count_params(), enc.count_params()) == (12_546_177, 6_275_392)
    # The cpu profile's 96 px at width 1/4: convolutions shrink ~16x (parameters do not depend on size).
    small = autoencoder.build(image_size=96, width=0.25)
    small_enc = autoencoder.encoder_of(small)
    assert (small.count_params(), small_enc.count_params()) == (786_465, 393_808)


def test_every_layer_is_named_by_its_block():
    ae = autoencoder.build(image_size=32, width=0.125)
    enc = autoencoder.encoder_of(ae)
    assert [layer.name for layer in ae.layers[:3]] == ["image", "to_unit", "encoder"]
    assert all(layer.name.startswith(("dec", "reconstruction")) for layer in ae.layers[3:])
    prefixes = ("unit_image", "enc", "bottleneck")
    assert all(layer.name.startswith(prefixes) for layer in enc.layers)
    with pytest.raises(ValueError, match="multiple of 16"):
        autoencoder.build(image_size=40, width=0.125)


def test_keras_two_accuracy_equals_binary_accuracy():
    # Keras 2 resolved metrics=["accuracy"] to binary_accuracy for a last dimension of 1; Keras 3's
    # BinaryAccuracy is the same formula, so both must agree on any images.
    rng = np.random.default_rng(0)
    y_true = np.round(rng.random((3, 8, 8, 1)), 1).astype("float32")  # many exact 0s and 1s
    y_pred = rng.random((3, 8, 8, 1)).astype("float32")
    ours = pretraining.KerasTwoAccuracy()
    ours.update_state(y_true, y_pred)
    ref = keras.metrics.BinaryAccuracy(threshold=0.5)
    ref.update_state(y_true, y_pred)
    by_hand = np.mean(y_true == (y_pred > 0.5))
    assert float(ours.result()) == pytest.approx(by_hand) == pytest.approx(float(ref.result()))


def test_psnr_and_ssim_by_hand():
    x = np.full((2, 16, 16, 1), 0.5, "float32")
    psnr = pretraining.PSNR()
    psnr.update_state(x, x + 0.1)  # MSE 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert float(psnr.result()) == pytest.approx(20.0, abs=1e-3)
    ssim = pretraining.SSIM()
    img = np.random.default_rng(1).random((2, 16, 16, 1)).astype("float32")
    ssim.update_state(img, img)
    assert float(ssim.result()) == pytest.approx(1.0, abs=1e-5)


def test_ssim_and_psnr_match_tensorflow_on_noisy_images():
    # keras.ops versions (any backend) against tf.image's definitions, on images that differ.
    import tensorflow as tf

    rng = np.random.default_rng(3)
    a = rng.random((3, 32, 32, 1)).astype("float32")
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1).astype("float32")
    np.testing.assert_allclose(
        np.asarray(pretraining.ssim(a, b)), tf.image.ssim(a, b, max_val=1.0).numpy(), atol=1e-4
    )
    np.testing.assert_allclose(
        np.asarray(pretraining.psnr(a, b)), tf.image.psnr(a, b, max_val=1.0).numpy(), atol=1e-3
    )


def test_stage_ends_are_cumulative():
    assert pretraining.stage_ends((300, 200, 100, 150, 150)) == [300, 500, 600, 750, 900]
