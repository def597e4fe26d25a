"""The papers' claims against one run: the paper's value, ours with its interval, and a verdict.

Each claim of :data:`nblib.report.reference.CLAIMS` is judged by a rule stated in :data:`RULES`,
so that a reader can check every verdict by hand from the numbers beside it. The verdict is
only as strong as the run allows: on the synthetic phantom no claim about RSNA radiographs can
be tested (every verdict is "not comparable"), and a run whose image size, width or test set
differ from the paper's still compares its numbers but says "at reduced scale" and lists how.

Everything is read from the run's result files (``metrics.json``, ``predictions*.csv``); the
report (:mod:`nblib.report.reporting`) checks those files before it calls :func:`build`.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nblib.core import config, results, runfiles
from nblib.report import reference, tables
from nblib.train import statistics

# The notebooks' bootstrap (nblib.train.evaluation, not imported: the report needs no Keras).
SEED, N_RESAMPLES, LEVEL = 0, 2000, 0.95
PAPER_SIZE, PAPER_WIDTH, PAPER_N_TEST = 256, 1.0, 200
# How each paper drew its 200 test images: our split of the same name is the same protocol.
PAPER_TEST = {
    1: ("official", "RSNA's 200 official test images"),
    2: ("random", "200 random RSNA images"),
}
DIGITS = {"msle": 4, "mse": 1, "r2": 1}  # the paper's precision; 2 otherwise
NOT_RUN, NOT_COMPARABLE, REDUCED = "not run", "not comparable", "at reduced scale"
SYNTHETIC = "synthetic data: the embedded phantom, not RSNA radiographs, so no claim about them"
COLUMNS = [
    "id",
    "claim",
    "paper",
    "where",
    "paper's value",
    "ours (95% interval)",
    "ours from",
    "verdict",
    "rule",
    "notes",
]
RULES = {
    "interval": "A number: 'consistent' when the paper's value lies inside our 95% bootstrap "
    "interval over the test images (statistics.claim_verdict); otherwise 'ours better' or "
    "'ours worse', by the side our whole interval lies on.",
    "paired": "A ranking (a beats b): a paired bootstrap of the metric's difference, a minus b, "
    "on the test images both models predicted. 'supported' when every pair's 95% interval shows "
    "the paper's better model better; 'contradicted' when any pair's shows the reverse; 'not "
    "shown' otherwise (an interval touching 0 cannot tell the two apart).",
    "trend": "A trend (falling by stage): 'supported' when every stage's validation MSE is below "
    "the stage before it, else 'not supported'. One number per stage: no interval.",
    NOT_COMPARABLE: "Whatever the rule: a run on the synthetic phantom tests nothing the papers "
    "claim about RSNA radiographs, so its numbers are shown and its verdicts are 'not comparable'; "
    "so is a ranking whose models share no test images.",
    REDUCED: "A run on real radiographs whose image size, network width or test set differ "
    "from the paper's keeps its verdict, qualified 'at reduced scale', and its notes list each "
    "difference (training settings are in the protocol tables).",
    NOT_RUN: "A notebook (or model) the run did not produce; a ranking needs both models of at "
    "least one pair. ('not shown' where a number has no finite predictions to bound, or a trend "
    "fewer than two stages.)",
}
PAPER1_KEYS = {stem: key for key, stem in runfiles.PAPER1_DIRS.items()}
RULE_OF = {"number": "interval", "ranking": "paired", "trend": "trend"}
RANKING = {"better": "supported", "worse": "contradicted", "no difference shown": "not shown"}


@dataclasses.dataclass
class Model:
    """One of our models as a claim sees it: its name, predictions, stored intervals, scale."""

    ref: str
    label: str
    pred: pd.DataFrame | None
    intervals: dict[str, Any]
    notes: list[str]  # how its data, size, width or test set differ from the paper's
    synthetic: bool


def is_synthetic(params: dict[str, Any]) -> bool:
    """Whether a notebook ran on the synthetic phantom: the default data folder, or a folder
    holding the phantom's ``phantom.json`` (a phantom passed with ``--data``)."""
    data = Path(str(params.get("data_dir") or config.DEFAULT_DATA_DIR))
    default = config.DEFAULT_DATA_DIR
    return (
        data.resolve() == default.resolve()
        or data.parts[-2:] == default.parts[-2:]
        or (data / "phantom.json").is_file()
    )


def _scale_notes(params: dict[str, Any], size: Any, width: Any, paper: int, n: Any) -> list[str]:
    """Each way a model's scale differs from the paper's: image size, width and, where the model
    has a test set (``n`` not None), its test images."""
    notes = []
    if size is not None and int(size) != PAPER_SIZE:
        notes.append(f"{int(size)} px (paper: {PAPER_SIZE})")
    if width is not None and float(width) != PAPER_WIDTH:
        notes.append(f"width {float(width):g} (paper: {PAPER_WIDTH:g})")
    split, theirs = PAPER_TEST[paper]
    if n is not None and (params.get("split") != split or n != PAPER_N_TEST):
        notes.append(f"{n} test images, {params.get('split')} split (paper: {theirs})")
    return notes


class Run:
    """A run's result files, each read once, as the claims need them."""

    def __init__(self, output_dir: Path | str):
        self.output_dir = Path(output_dir)
        self._docs: dict[str, dict | None] = {}
        self._models: dict[tuple[str, int], Model | None] = {}

    def doc(self, stem: str) -> dict | None:
        """A notebook's ``metrics.json``, or None where the notebook did not run."""
        if stem not in self._docs:
            path = self.output_dir / stem / runfiles.METRICS
            self._docs[stem] = results.read_json(path) if path.is_file() else None
        return self._docs[stem]

    def _predictions(self, stem: str, tag: str | None) -> pd.DataFrame | None:
        path = self.output_dir / stem / runfiles.predictions(tag)
        if not path.is_file():
            return None
        df = results.read_csv(path, dtype={"id": str})
        return df.assign(true=df["true"].astype(float), predicted=df["predicted"].astype(float))

    def model(self, ref: str, paper: int) -> Model | None:
        """Our model ``ref`` ("03_resnet50", "06_ae_bonet:mobilenet"), or None if not run."""
        if (ref, paper) not in self._models:
            self._models[ref, paper] = self._model(ref, paper)
        return self._models[ref, paper]

    def _model(self, ref: str, paper: int) -> Model | None:
        stem, _, key = ref.partition(":")
        doc = self.doc(stem)
        if doc is None:
            return None
        params, m = doc.get("params") or {}, doc.get("metrics") or {}
        if not key:
            entry, size, width = m, params.get("image_size"), params.get("width")
            label = tables.PAPER1_LABELS[PAPER1_KEYS[stem]]
        else:
            key = _model_key(m.get("models") or {}, key)
            if key is None:
                return None
            entry = m["models"][key]
            size, label = entry.get("image_size"), entry.get("label", key)
            baseline = key not in ("ae_bonet", "random_init")
            width = params.get("baseline_width" if baseline else "width")
        pred = self._predictions(stem, key or None)
        n = len(pred) if pred is not None else m.get("n_test")
        notes = _scale_notes(params, size, width, paper, n)
        if key and key not in ("ae_bonet", "random_init"):
            if params.get("baseline_weights") != "imagenet":
                notes.append("baseline from random init (paper: ImageNet weights)")
        return Model(ref, label, pred, entry.get("intervals") or {}, notes, is_synthetic(params))


def _model_key(models: dict[str, Any], key: str) -> str | None:
    """``key`` itself, or a baseline's ``<key>_<size>`` at the size nearest the paper's 256 px."""
    if key in models:
        return key
    sized = [k for k in models if k.rsplit("_", 1)[0] == key and k.rsplit("_", 1)[-1].isdigit()]
    return min(sized, key=lambda k: abs(int(k.rsplit("_", 1)[1]) - PAPER_SIZE), default=None)


def metric_samples(true: np.ndarray, pred: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`statistics.metric_samples` plus MAPE (%) and MSLE (predictions clipped at 0, as
    Keras does), the paper-1 metrics the notebooks store without an interval."""
    out = statistics.metric_samples(true, pred, idx)
    t, p = true[idx], pred[idx]
    out["mape"] = 100 * np.mean(np.abs(p - t) / np.maximum(np.abs(t), 1e-7), axis=1)
    out["msle"] = np.mean((np.log1p(np.maximum(p, 0)) - np.log1p(np.maximum(t, 0))) ** 2, axis=1)
    return out


def interval(model: Model, metric: str) -> dict[str, float] | None:
    """Our ``{"value", "low", "high"}`` of ``metric``: the one ``metrics.json`` stores where it
    has it (MAE, RMSE, R^2), else the same seeded bootstrap over the predictions file."""
    stored = model.intervals.get(metric)
    if isinstance(stored, dict) and all(
        stored.get(k) is not None for k in ("value", "low", "high")
    ):
        return stored
    if model.pred is None:
        return None
    t = model.pred["true"].to_numpy(float)
    p = model.pred["predicted"].to_numpy(float)
    try:
        idx = statistics.resample_indices(len(t), N_RESAMPLES, SEED)
        value = float(metric_samples(t, p, np.arange(len(t))[None])[metric][0])
        samples = metric_samples(t, p, idx)[metric]
    except ValueError:
        return None
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.nanpercentile(samples, [tail, 100 - tail])
    return {"value": value, "low": float(low), "high": float(high)}


def _qualified(verdict: str, models: list[Model]) -> tuple[str, str]:
    """The verdict as the run's scale allows it, and the notes that say why (each model's own
    where the models of a ranking differ in scale)."""
    if any(m.synthetic for m in models):
        return NOT_COMPARABLE, SYNTHETIC
    if not any(m.notes for m in models):
        return verdict, ""
    if all(m.notes == models[0].notes for m in models):
        return f"{verdict} {REDUCED}", "; ".join(models[0].notes)
    return f"{verdict} {REDUCED}", "; ".join(
        f"{m.label}: {', '.join(m.notes) or 'as the paper'}" for m in models
    )


def _number(claim: reference.Claim, run: Run) -> dict[str, str]:
    """A paper's number against our 95% interval (:func:`statistics.claim_verdict`)."""
    model = run.model(claim.ours[0], claim.paper)
    if model is None:
        return {"verdict": NOT_RUN, "notes": f"no {claim.ours[0].replace(':', ' model ')}"}
    ci = interval(model, claim.metric)
    if ci is None:
        return {"verdict": "not shown", "notes": "no finite predictions to put an interval on"}
    k = claim.scale
    value, low, high = ci["value"] * k, ci["low"] * k, ci["high"] * k
    verdict = statistics.claim_verdict(claim.value, low, high, claim.lower_is_better)
    ours = statistics.fmt(value, low, high, DIGITS.get(claim.metric, 2))
    verdict, notes = _qualified(verdict, [model])
    return {"ours": ours, "verdict": verdict, "notes": notes}


def _shared(a: Model, b: Model) -> tuple[np.ndarray, ...] | None:
    """True ages and both models' predictions on the test images both predicted (by id), or
    None where they share fewer than two or disagree on an image's age (not one test set)."""
    if a.pred is None or b.pred is None:
        return None
    cols = ["id", "true", "predicted"]
    both = a.pred[cols].merge(b.pred[cols], on="id", suffixes=("_a", "_b"))
    if len(both) < 2 or not np.allclose(both["true_a"], both["true_b"]):
        return None
    return tuple(both[c].to_numpy(float) for c in ("true_a", "predicted_a", "predicted_b"))


def _ranking(claim: reference.Claim, run: Run) -> dict[str, str]:
    """Each (better, worse) pair of the claim by a paired bootstrap on shared test images."""
    said, verdicts, ran = [], [], {}
    for ref_a, ref_b in claim.pairs:
        a, b = run.model(ref_a, claim.paper), run.model(ref_b, claim.paper)
        ran.update({m.ref: m for m in (a, b) if m is not None})
        if a is None or b is None:
            continue
        shared = _shared(a, b)
        if shared is None:
            said.append(f"{a.label} vs {b.label}: no shared test images")
            continue
        c = statistics.paired(*shared, metric=claim.metric, n_resamples=N_RESAMPLES, seed=SEED)
        verdicts.append(RANKING[c["verdict"]])
        diff = statistics.fmt(c["difference"], c["low"], c["high"], 2)
        said.append(f"{claim.metric.upper()} {a.label} - {b.label}: {diff}")
    if not said:  # no pair with both models: nothing to rank
        only = ", ".join(m.label for m in ran.values()) or "none of its models"
        return {"verdict": NOT_RUN, "notes": f"only {only} ran; a ranking needs both of a pair"}
    if not verdicts:
        return {"verdict": NOT_COMPARABLE, "ours": "; ".join(said), "notes": "not one test set"}
    verdict, notes = _qualified(_combined(verdicts), list(ran.values()))
    return {"ours": "; ".join(said), "verdict": verdict, "notes": notes}


def _combined(verdicts: list[str]) -> str:
    """A ranking's verdict from its pairs': one reversed pair contradicts the whole order."""
    if "contradicted" in verdicts:
        return "contradicted"
    return "supported" if set(verdicts) == {"supported"} else "not shown"


def _trend(claim: reference.Claim, run: Run) -> dict[str, str]:
    """Table 2's falling error: every stage's validation MSE below the stage before it."""
    doc = run.doc(claim.ours[0])
    if doc is None:
        return {"verdict": NOT_RUN, "notes": f"no {claim.ours[0]}"}
    stages = (doc.get("metrics") or {}).get("stages") or []
    values = [s.get(claim.metric) for s in stages]
    if len(values) < 2 or any(v is None for v in values):
        return {"verdict": "not shown", "notes": "fewer than two stages with a validation MSE"}
    falling = all(b < a for a, b in itertools.pairwise(values))
    params = doc.get("params") or {}
    epochs = "/".join(str(s.get("epochs")) for s in stages)
    paper_epochs = "/".join(str(s["epochs"]) for s in reference.PAPER2_TABLE2)
    notes = _scale_notes(params, params.get("image_size"), params.get("width"), 2, None)
    if epochs != paper_epochs:
        notes.append(f"stages of {epochs} epochs (paper: {paper_epochs})")
    model = Model(claim.ours[0], "autoencoder", None, {}, notes, is_synthetic(params))
    verdict, notes = _qualified("supported" if falling else "not supported", [model])
    return {"ours": " > ".join(f"{v:.3g}" for v in values), "verdict": verdict, "notes": notes}


def _ours_from(claim: reference.Claim) -> str:
    """The notebook(s) and model(s) a claim reads: ``06_ae_bonet (ae_bonet, random_init)``."""
    stems: dict[str, list[str]] = {}
    for ref in claim.ours:
        stem, _, key = ref.partition(":")
        stems.setdefault(stem, [])
        if key:
            stems[stem].append(key)
    return "; ".join(f"{s} ({', '.join(k)})" if k else s for s, k in stems.items())


def row(claim: reference.Claim, run: Run) -> dict[str, Any]:
    """One claim's row of the table."""
    judged = {"number": _number, "ranking": _ranking, "trend": _trend}[claim.kind](claim, run)
    return {
        "id": claim.id,
        "claim": claim.statement,
        "paper": claim.paper,
        "where": claim.where,
        "paper's value": str(claim.value),
        "ours (95% interval)": judged.get("ours", "-"),
        "ours from": _ours_from(claim),
        "verdict": judged["verdict"],
        "rule": RULE_OF[claim.kind],
        "notes": judged.get("notes", ""),
    }


def build(output_dir: Path | str) -> pd.DataFrame:
    """The claims table of a run: one row per claim of :data:`reference.CLAIMS`."""
    run = Run(output_dir)
    return pd.DataFrame([row(c, run) for c in reference.CLAIMS], columns=COLUMNS)


def rules_markdown() -> list[str]:
    """The rules as Markdown bullets, for the report beneath the table."""
    return [f"- **{name}**: {text}" for name, text in RULES.items()]
