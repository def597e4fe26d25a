"""Training: fit with resumable checkpoints, weight averaging, autoencoder pretraining, evaluation,
metrics and their statistics. Imports :mod:`nblib.models`, :mod:`nblib.data` and :mod:`nblib.core`."""
