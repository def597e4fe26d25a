"""The names of a run's result files, in one place: every writer and every reader imports them.

A run's output folder holds one folder per notebook (``03_resnet50/`` ...) and the split lists
(``splits/<protocol>.csv``), and ``cache/`` (the data checks' decodes, shared by the notebooks of
the run; safe to delete). In each notebook's folder: ``metrics.json`` (parameters, metrics,
provenance), ``config.json``, ``history.csv`` per training (``history_<tag>.csv`` where one
notebook trains several models), ``predictions.csv`` likewise, tables as CSV, figures as PNG,
the model as ``.keras`` and the checkpoints that let a stopped training continue.
"""

from __future__ import annotations

from pathlib import Path

# --- the notebooks' folders ----------------------------------------------------------------------
PAPER1_DIRS = {"resnet50": "03_resnet50", "inception_v4": "04_inception_v4"}
AUTOENCODER_DIR = "05_autoencoder_pretraining"
BONET_DIR = "06_ae_bonet"
BEYOND_DIR = "07_beyond"
REPORT_DIR = "08_comparison"

# --- files of every notebook -------------------------------------------------------------------
CONFIG = "config.json"
METRICS = "metrics.json"
HISTORY = "history.csv"
PREDICTIONS = "predictions.csv"
MODEL = "model.keras"

# --- the data checks and the split lists -------------------------------------------------------
DROPPED_ROWS = "dropped_rows.csv"
DATA_WARNINGS = "data_warnings.csv"
SPLITS = "splits"
IMAGE_CHECKS = "cache"  # cache/checks-<S>-<digest>.npz: the checks' verdicts and decodes at S px

# --- paper 2's autoencoder ---------------------------------------------------------------------
AUTOENCODER = "autoencoder.keras"
ENCODER_WEIGHTS = "encoder.weights.h5"
STAGES = "stages.csv"

# --- notebook 07, beyond the papers ------------------------------------------------------------
ABLATION = "ablation.csv"
ENSEMBLE = "ensemble.json"  # members (paths relative to the folder) and validation-chosen weights
CROP_BOXES = "crop_boxes.csv"
VALIDATION_PREDICTIONS = "validation_predictions.csv"  # 07: what its calibration was fitted on
DATA_SCALING = "data_scaling"  # .csv and .png: 07's test MAE against training-set size
BEYOND_MODELS = "models"  # models/<rung>.keras with <rung>.preprocess.json beside each

# --- checkpoints of one training (``checkpoints/<tag or main>/``) --------------------------------
CHECKPOINTS = "checkpoints"
LAST_WEIGHTS = "last.weights.npz"
BEST_WEIGHTS = "best.weights.npz"
OPTIMIZER_STATE = "optimizer.npz"
CHECKPOINT_STATE = "state.json"  # written last: it vouches for the files above

# --- the report and the runner -----------------------------------------------------------------
REPORT = "report.md"
TIMINGS = "run_all_timings.json"


def _tagged(name: str, tag: str | None) -> str:
    return f"{Path(name).stem}_{tag}{Path(name).suffix}" if tag else name


def history(tag: str | None = None) -> str:
    """``history.csv``, or ``history_<tag>.csv`` for one of several models of a notebook."""
    return _tagged(HISTORY, tag)


def predictions(tag: str | None = None) -> str:
    """``predictions.csv``, or ``predictions_<tag>.csv`` for one of several models of a notebook."""
    return _tagged(PREDICTIONS, tag)


def benchmark_predictions(tag: str) -> str:
    """A model's predictions on the official test table when its own test set is another
    (``benchmark_predictions_<tag>.csv``; outside the ``predictions*.csv`` family on purpose)."""
    return f"benchmark_predictions_{tag}.csv"


def tagged_files(folder: Path | str, name: str) -> dict[str, Path]:
    """``name`` (e.g. ``predictions.csv``) and its tagged forms in ``folder``, sorted by file
    name, keyed by tag: ``predictions_vgg16_80.csv`` -> ``vgg16_80``, ``name`` itself -> ""."""
    stem, suffix = Path(name).stem, Path(name).suffix
    return {
        path.stem[len(stem) :].lstrip("_"): path
        for path in sorted(Path(folder).glob(f"{stem}*{suffix}"))
    }


def table(name: str) -> str:
    """A table's CSV file: ``table1`` -> ``table1.csv``."""
    return f"{name}.csv"


def figure(name: str) -> str:
    """A figure's PNG file: ``pred_vs_true`` -> ``pred_vs_true.png``."""
    return f"{name}.png"


def split_list(output_dir: Path | str, protocol: str) -> Path:
    """The saved split of ``protocol`` (``official`` or ``random``): ``splits/<protocol>.csv``."""
    return Path(output_dir) / SPLITS / f"{protocol}.csv"


def encoder_weights(output_dir: Path | str) -> Path:
    """The pretrained encoder that notebook 05 writes and notebook 06 reads."""
    return Path(output_dir) / AUTOENCODER_DIR / ENCODER_WEIGHTS
