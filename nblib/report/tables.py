"""The papers' tables and the test error by age band and sex, each computed by one function.

Every function takes the result dictionaries a notebook writes into its ``metrics.json`` (the
``metrics`` section, or the same dictionary in memory before it is written) or prediction frames
``[id, true, predicted, male, ...]``. The experiments (:mod:`nblib.experiments.paper1`, :mod:`nblib.experiments.paper2`)
and the report (:mod:`nblib.report.reporting`) call the same functions, so a table has the same headers,
rows and rounding in a notebook's folder and in the report. Paper numbers come from
:mod:`nblib.report.reference` and sit in columns marked "(reference)".

A stored NaN (a diverged model) is ``None`` in ``metrics.json`` and stays empty in a table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from nblib.report import reference

PAPER1_LABELS = {"resnet50": "ResNet-50 (GELU)", "inception_v4": "Inception-V4"}
# Table I's metrics: key in metrics.json, row name (R^2 in percent, as the paper gives it).
TABLE1_METRICS = (
    ("loss", "loss (MSLE)"),
    ("rmse", "RMSE (months)"),
    ("mape", "MAPE (%)"),
    ("r2", "R^2 (%)"),
    ("mae", "MAE (months)"),
)
AGE_BANDS_YEARS = ((0, 2), (2, 6), (6, 10), (10, 14), (14, 100))  # [lo, hi) years; 100 = open
GROUP_COLUMNS = ("model", "group", "n", "MAE", "bias")
BONET_KEYS = ("ae_bonet", "random_init")  # AE-BoNet and its random-init ablation


def rounded(value: Any, digits: int = 4) -> Any:
    """``value`` rounded for a table; ``None`` (a stored NaN) stays ``None``, text stays text."""
    if value is None:
        return None
    try:
        return round(float(value), digits)
    except (TypeError, ValueError):
        return value


def _scaled(metric: str, value: Any) -> Any:
    """R^2 as a percentage (the paper's unit); every other metric as stored."""
    return 100 * float(value) if metric == "r2" and value is not None else value


def table1(key: str, metrics: dict[str, Any]) -> pd.DataFrame:
    """Table I rows of paper 1's model ``key``: the paper's value, ours, the mean predictor's.

    ``metrics`` holds ``test`` and ``mean_predictor`` (loss, rmse, mape, r2, mae), as written to
    the notebook's ``metrics.json``. The paper gives no MAE; the mean predictor is the floor a
    model that learns nothing reaches.
    """
    ref = reference.PAPER1_TABLE1[key]
    test, mean = metrics["test"], metrics.get("mean_predictor") or {}
    return pd.DataFrame(
        [
            {
                "model": PAPER1_LABELS[key],
                "metric": name,
                "paper (reference)": ref.get(metric),
                "ours": rounded(_scaled(metric, test.get(metric))),
                "ours, mean predictor": rounded(_scaled(metric, mean.get(metric))),
            }
            for metric, name in TABLE1_METRICS
        ]
    )


def table2(stages: list[dict[str, Any]]) -> pd.DataFrame:
    """Table 2: the paper's pretraining stages (reference) beside ours, one row per stage.

    ``stages`` are the rows :func:`nblib.train.pretraining.pretrain` returns (``metrics.stages`` in
    the autoencoder's ``metrics.json``): epochs, training MSE and accuracy of the stage's last
    epoch, validation MSE, PSNR and SSIM.
    """
    rows = []
    for i, st in enumerate(stages):
        ref = reference.PAPER2_TABLE2[i] if i < len(reference.PAPER2_TABLE2) else {}
        rows.append(
            {
                "stage": st.get("stage", i + 1),
                "paper epochs (reference)": ref.get("epochs"),
                "paper MSE (reference)": ref.get("loss"),
                "paper accuracy (reference)": ref.get("accuracy"),
                "our epochs": st.get("epochs"),
                "our MSE": rounded(st.get("loss"), 6),
                "our accuracy": rounded(st.get("accuracy")),
                "our val MSE": rounded(st.get("val_loss"), 6),
                "our val PSNR (dB)": rounded(st.get("psnr"), 2),
                "our val SSIM": rounded(st.get("ssim")),
            }
        )
    return pd.DataFrame(rows)


def table4(models: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Table 4: the related work's MAE (reference) and AE-BoNet's, ours beside the paper's."""
    rows = [
        {"method": k, "paper MAE (reference)": v, "our MAE": None}
        for k, v in reference.PAPER2_TABLE4.items()
    ]
    if "ae_bonet" in models:  # the table's last row is AE-BoNet
        rows[-1]["our MAE"] = rounded(models["ae_bonet"]["test"]["mae"], 2)
    return pd.DataFrame(rows)


def _paper_mae_mse(key: str) -> dict[int, tuple]:
    """Table 5's reference (MAE, MSE) per image size of model ``key`` (``vgg16_256`` -> vgg16)."""
    if key == "random_init":  # the ablation is ours: the paper has no such row
        return {}
    backbone = key if key in BONET_KEYS else key.rsplit("_", 1)[0]
    return reference.PAPER2_TABLE5.get(backbone, {})


def table5(models: dict[str, dict[str, Any]], mean: dict[str, Any]) -> pd.DataFrame:
    """Tables 4-5 side by side: the paper's MAE/MSE at 256 and 450 px (reference) and ours.

    ``models`` maps a model's key (``ae_bonet``, ``random_init``, ``<backbone>_<size>``) to its
    entry of ``metrics.models``: label, init, image_size, test (mae, mse), epochs_run,
    train_seconds. ``mean`` is the mean predictor's test metrics (its row comes last).
    """
    rows = []
    for key, m in models.items():
        ref = _paper_mae_mse(key)
        ref_256, ref_450 = ref.get(256, (None, None)), ref.get(450, (None, None))
        rows.append(
            {
                "model": m.get("label", key),
                "init": m.get("init"),
                "image size": m.get("image_size"),
                "paper MAE @256 (reference)": ref_256[0],
                "paper MSE @256 (reference)": ref_256[1],
                "paper MAE @450 (reference)": ref_450[0],
                "paper MSE @450 (reference)": ref_450[1],
                "our MAE": rounded(m.get("test", {}).get("mae"), 2),
                "our MSE": rounded(m.get("test", {}).get("mse"), 1),
                "epochs run": m.get("epochs_run"),
                "train time (s)": rounded(m.get("train_seconds"), 0),
            }
        )
    if mean:
        rows.append(
            {
                "model": "predicting the training mean",
                "init": "-",
                "image size": None,
                "our MAE": rounded(mean.get("mae"), 2),
                "our MSE": rounded(mean.get("mse"), 1),
            }
        )
    return pd.DataFrame(rows)


def _is_male(male: pd.Series) -> pd.Series:
    """The ``male`` column as booleans, whether it holds bools or their text from a CSV."""
    return male.astype(str).str.lower().isin(["true", "1", "1.0"])


def _band_name(lo: int, hi: int) -> str:
    """An age band's name in the tables: ``"6-10 y"``, or ``"14+ y"`` for the open last band."""
    return f"{lo}-{hi} y" if hi < 100 else f"{lo}+ y"


AGE_BANDS = tuple(_band_name(lo, hi) for lo, hi in AGE_BANDS_YEARS)  # the bands' names, in order


def age_groups(pred: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """(name, row mask) of every age band (true age, years: 0-2, 2-6, 6-10, 10-14, 14+) and sex."""
    years = pred["true"] / 12.0
    groups = [(_band_name(lo, hi), (years >= lo) & (years < hi)) for lo, hi in AGE_BANDS_YEARS]
    if "male" in pred:
        male = _is_male(pred["male"])
        groups += [("female", ~male), ("male", male)]
    return groups


def error_by_group(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Test MAE and bias (mean of predicted - true, months) per model, age band and sex.

    ``predictions`` maps a model's name to its prediction frame. An empty group has ``n`` 0 and
    no MAE or bias.
    """
    rows = []
    for name, pred in predictions.items():
        diff = pred["predicted"] - pred["true"]
        for group, sel in age_groups(pred):
            rows.append(
                {
                    "model": name,
                    "group": group,
                    "n": int(sel.sum()),
                    "MAE": rounded(diff[sel].abs().mean(), 2) if sel.any() else None,
                    "bias": rounded(diff[sel].mean(), 2) if sel.any() else None,
                }
            )
    return pd.DataFrame(rows, columns=list(GROUP_COLUMNS))
