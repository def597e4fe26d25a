"""The papers' published numbers, kept in one place and only ever shown as labelled reference
columns beside numbers the code computed."""

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
