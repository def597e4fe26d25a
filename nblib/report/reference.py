"""The papers' published numbers, kept in one place and only ever shown as labelled reference
columns beside numbers the code computed, and the statements the report checks against a run
(:data:`CLAIMS`), each with where in its paper it stands so a reader can look it up."""

from __future__ import annotations

import dataclasses
import itertools

from nblib.core import runfiles

# Paper 1, Table I: test-set results on the official RSNA test split (200 images), 256x256 input.
PAPER1_TABLE1 = {
    "resnet50": {"loss": 0.02358, "rmse": 17.85, "mape": 12.20, "r2": 81.08},
    "inception_v4": {"loss": 0.02094, "rmse": 15.09, "mape": 9.83, "r2": 86.34},
}
PAPER1_EPOCHS = {"resnet50": "120 (early stop at 90)", "inception_v4": "100"}

# Paper 2, Table 2: autoencoder pretraining, MSE and Keras "accuracy" at the end of each stage.
PAPER2_TABLE2 = [
    {"stage": 1, "epochs": 300, "loss": 0.000206, "accuracy": 0.4866},
    {"stage": 2, "epochs": 200, "loss": 0.000172, "accuracy": 0.6169},
    {"stage": 3, "epochs": 100, "loss": 0.000166, "accuracy": 0.6819},
    {"stage": 4, "epochs": 150, "loss": 0.000156, "accuracy": 0.6830},
    {"stage": 5, "epochs": 150, "loss": 0.000148, "accuracy": 0.6839},
]

# Paper 2, Table 4 (related work, MAE in months) and Table 5 (MAE / MSE at 256 and 450 px).
PAPER2_TABLE4 = {"Wibisono et al. 2019": 14.78, "Gao et al. 2020": 9.997, "AE-BoNet": 9.3}
PAPER2_TABLE5 = {
    # backbone: {image_size: (MAE, MSE)}
    "xception": {450: (14.7, 352.8), 256: (16.1, 413.6)},
    "vgg16": {450: (15.8, 427.6), 256: (19.1, 661.2)},
    "inception_v3": {450: (13.6, 295.5), 256: (16.1, 416.3)},
    "mobilenet": {450: (12.5, 268.8), 256: (12.9, 296.8)},
    "ae_bonet": {450: (9.9, 161.1), 256: (9.3, 144.6)},
}

# Published results on RSNA's official test-200 (and paper 2's on its own 200-image split of the
# training table), shown beside a run's own numbers on that table (report.leaderboard). MAE is the
# mean absolute difference from the test set's ground truth (the RSNA papers call it MAD).
TEST200_PUBLISHED = [
    {
        "system": "Paper 1, GELU ResNet-50 (256 px)",
        "rmse": 17.85,
        "r2": 0.8108,
        "source": "paper 1, Table I",
    },
    {
        "system": "Paper 1, Inception-V4 (256 px)",
        "rmse": 15.09,
        "r2": 0.8634,
        "source": "paper 1, Table I",
    },
    {
        "system": "Paper 2, AE-BoNet (256 px)",
        "mae": 9.3,
        "source": "paper 2, Table 5 (its own random split of the training table, not test-200)",
    },
    {
        "system": "RSNA 2017 challenge winner",
        "mae": 4.265,
        "source": "Halabi et al., Radiology 2019;290:498-503",
    },
    {
        "system": "BoneXpert version 3",
        "rmse": 5.4,
        "source": "Thodberg et al., Sci Rep 2022;12:6388 (RMS error 0.45 years)",
    },
    {
        "system": "Deeplasia (512 px, ensemble, GPU)",
        "mae": 3.87,
        "source": "Rassmann et al., Pediatr Radiol 2024",
    },
]

# What both papers' training used where a scaled profile may differ (Keras defaults, constant Adam
# rate): the report lists every departure from these beside the results.
PAPER_TRAINING = {
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "bn_momentum": 0.99,
    "clipnorm": 0.0,
    "average_epochs": 0,
    "flips": "both",
}
PAPER2_BASELINES = ("xception", "vgg16", "inception_v3", "mobilenet")


# --- the papers' claims, checked by nblib.report.claims ------------------------------------------

P1_RESNET, P1_INCEPTION = runfiles.PAPER1_DIRS["resnet50"], runfiles.PAPER1_DIRS["inception_v4"]
BONET = runfiles.BONET_DIR
PAPER2_BASELINE_LABELS = {
    "xception": "Xception",
    "vgg16": "VGG16",
    "inception_v3": "InceptionV3",
    "mobilenet": "MobileNet",
}


@dataclasses.dataclass(frozen=True)
class Claim:
    """One statement of a paper, in a form a run's result files can be held against.

    Attributes:
        id: Short stable name, used in the report and by tests.
        paper: 1 or 2.
        where: Where the statement stands in the paper ("Table I", "Discussion"...).
        statement: The statement in a few words.
        value: The paper's number, or the qualitative claim in words (a ranking, a trend).
        kind: "number" (a value against our interval), "ranking" (each ``pairs`` model better
            than its partner, by a paired bootstrap) or "trend" (falling stage by stage).
        metric: Our metric it maps to: mae, mse, rmse, r2, mape, msle, or val_loss (a trend).
        ours: Our model(s): a notebook folder ("03_resnet50") or "folder:model key"
            ("06_ae_bonet:ae_bonet"); a baseline's key is its backbone, any image size.
        lower_is_better: Whether a lower value of ``metric`` is better.
        scale: Factor from our stored unit to the paper's (100 for R^2, which paper 1 gives in
            percent).
        pairs: For a ranking, (better, worse) model references as the paper orders them.
    """

    id: str
    paper: int
    where: str
    statement: str
    value: float | str
    kind: str
    metric: str
    ours: tuple[str, ...]
    lower_is_better: bool = True
    scale: float = 1.0
    pairs: tuple[tuple[str, str], ...] = ()


TABLE1_CLAIMS = (  # (metric, name, our metrics.json key, lower is better, scale)
    ("loss", "test loss (MSLE)", "msle", True, 1.0),
    ("rmse", "test RMSE (months)", "rmse", True, 1.0),
    ("mape", "test MAPE (%)", "mape", True, 1.0),
    ("r2", "test R^2 (%)", "r2", False, 100.0),
)


def _table1_claims() -> list[Claim]:
    """Paper 1's Table I, one claim per model and metric (both models tested on RSNA's 200)."""
    models = (("resnet50", "ResNet-50", P1_RESNET), ("inception_v4", "Inception-V4", P1_INCEPTION))
    return [
        Claim(
            f"p1-{key}-{metric}",
            1,
            "Table I",
            f"{label} {name}",
            PAPER1_TABLE1[key][metric],
            "number",
            ours_key,
            (folder,),
            lower,
            scale,
        )
        for key, label, folder in models
        for metric, name, ours_key, lower, scale in TABLE1_CLAIMS
    ]


def _baselines_256() -> dict[str, float]:
    """Table 5's baseline MAEs at 256 px (AE-BoNet's size), best first."""
    maes = {b: PAPER2_TABLE5[b][256][0] for b in PAPER2_BASELINES}
    return dict(sorted(maes.items(), key=lambda kv: kv[1]))


def _order_text(maes: dict[str, float]) -> str:
    """``MobileNet 12.9 < InceptionV3 16.1 = Xception 16.1 < VGG16 19.1``."""
    out = []
    for (a, x), (_, y) in itertools.pairwise([*maes.items(), (None, None)]):
        out.append(f"{PAPER2_BASELINE_LABELS[a]} {x}")
        if y is not None:
            out.append("=" if x == y else "<")
    return " ".join(out)


def _order_pairs(maes: dict[str, float]) -> tuple[tuple[str, str], ...]:
    """Every (better, worse) pair of baselines Table 5 orders; ties (16.1 and 16.1) claim none."""
    return tuple(
        (f"{BONET}:{a}", f"{BONET}:{b}")
        for a, b in itertools.permutations(maes, 2)
        if maes[a] < maes[b]
    )


AE_BONET, RANDOM_INIT = f"{BONET}:ae_bonet", f"{BONET}:random_init"


def _paper2_numbers() -> list[Claim]:
    """Paper 2's Tables 4-5: AE-BoNet's MAE and MSE, and each baseline's MAE, at 256 px."""
    ae_mae, ae_mse = PAPER2_TABLE5["ae_bonet"][256]
    where = "Table 5 (256 px)"
    return [
        Claim(
            "p2-ae_bonet-mae",
            2,
            "Abstract; Tables 4-5 (256 px); Conclusion",
            "AE-BoNet test MAE (months)",
            ae_mae,
            "number",
            "mae",
            (AE_BONET,),
        ),
        Claim(
            "p2-ae_bonet-mse", 2, where, "AE-BoNet test MSE", ae_mse, "number", "mse", (AE_BONET,)
        ),
        *[
            Claim(
                f"p2-{b}-mae",
                2,
                where,
                f"{PAPER2_BASELINE_LABELS[b]} baseline test MAE (months)",
                mae,
                "number",
                "mae",
                (f"{BONET}:{b}",),
            )
            for b, mae in _baselines_256().items()
        ],
    ]


def _paper2_rankings() -> list[Claim]:
    """Paper 2's orderings: pretraining helps, AE-BoNet beats the baselines, their order."""
    maes = _baselines_256()
    best = (
        f"AE-BoNet {PAPER2_TABLE5['ae_bonet'][256][0]} < the best baseline's {min(maes.values())}"
    )
    return [
        Claim(
            "p2-pretraining-helps",
            2,
            "Discussion; Conclusion (no random-init row in the paper)",
            "pretraining the encoder as an autoencoder helps AE-BoNet",
            "pretrained AE-BoNet beats the same network from random initialisation",
            "ranking",
            "mae",
            (AE_BONET, RANDOM_INIT),
            pairs=((AE_BONET, RANDOM_INIT),),
        ),
        Claim(
            "p2-ae_bonet-beats-baselines",
            2,
            "Table 5; Discussion",
            "AE-BoNet beats every baseline",
            f"{best} (MAE at 256 px)",
            "ranking",
            "mae",
            (AE_BONET, *(f"{BONET}:{b}" for b in maes)),
            pairs=tuple((AE_BONET, f"{BONET}:{b}") for b in maes),
        ),
        Claim(
            "p2-baselines-order",
            2,
            "Table 5 (256 px)",
            "the baselines' order",
            f"{_order_text(maes)} (MAE)",
            "ranking",
            "mae",
            tuple(f"{BONET}:{b}" for b in maes),
            pairs=_order_pairs(maes),
        ),
    ]


TABLE2_CLAIM = Claim(
    "p2-table2-falling",
    2,
    'Table 2; Results and Discussion ("the loss decreased steadily at each stage")',
    "autoencoder reconstruction error falls at every pretraining stage",
    "falling: " + " > ".join(f"{s['loss']:g}" for s in PAPER2_TABLE2),
    "trend",
    "val_loss",
    (runfiles.AUTOENCODER_DIR,),
)


def _claims() -> tuple[Claim, ...]:
    """Every claim the report checks, paper 1's first."""
    ranking = Claim(
        "p1-inception_v4-beats-resnet50",
        1,
        'Table I; Sec. VI Results ("Inception V4 could perform slightly better predictions")',
        "Inception-V4 beats ResNet-50",
        f"Inception-V4 RMSE {PAPER1_TABLE1['inception_v4']['rmse']} < ResNet-50's "
        f"{PAPER1_TABLE1['resnet50']['rmse']}",
        "ranking",
        "rmse",
        (P1_INCEPTION, P1_RESNET),
        pairs=((P1_INCEPTION, P1_RESNET),),
    )
    return (*_table1_claims(), ranking, TABLE2_CLAIM, *_paper2_numbers(), *_paper2_rankings())


CLAIMS = _claims()
