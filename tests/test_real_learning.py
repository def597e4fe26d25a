"""The models learn real anatomy: brief trainings on the 1,000-image RSNA sample in ../shared.

A lighter version of the `sample` profile (smaller images, fewer epochs) so the suite stays
short; the README's results table comes from the full `sample` profile. Skipped without
../shared (a user's own clone).
"""

from __future__ import annotations

import pytest

from nblib.core import config
from nblib.experiments import paper1, paper2

pytestmark = [pytest.mark.real, pytest.mark.slow]


def _cfg(notebook, tmp_path, sample, **kw):
    return config.make(notebook, "sample", data_dir=str(sample), output_dir=str(tmp_path), **kw)


def test_resnet50_learns_on_the_real_sample(tmp_path, shared_dir):
    cfg = _cfg(
        "03_resnet50", tmp_path, shared_dir / "data" / "rsna-sample", image_size=64, epochs=14
    )
    r = paper1.run(cfg, "resnet50")
    assert r.scores.test["mae"] < 0.95 * r.scores.mean["mae"], (r.scores.test, r.scores.mean)
    assert len(r.history) == 14 and r.history["loss"].iloc[-1] < r.history["loss"].iloc[0]


def test_autoencoder_pretraining_and_ae_bonet_learn_on_the_real_sample(tmp_path, shared_dir):
    sample = shared_dir / "data" / "rsna-sample"
    pre = paper2.pretrain(
        _cfg("05_autoencoder_pretraining", tmp_path, sample, image_size=64, ae_stages=[2, 2, 2])
    )
    val = pre.stages["val_loss"].tolist()
    assert val[0] > val[1] > val[2], f"validation MSE should fall stage by stage: {val}"
    res = paper2.run_bonet(
        _cfg("06_ae_bonet", tmp_path, sample, image_size=64, epochs=12), with_baselines=False
    )
    ae = res.models["ae_bonet"].scores.test["mae"]
    assert ae < 0.95 * res.mean["mae"], (ae, res.mean)
    assert "random_init" in res.models  # the ablation is always reported beside it
