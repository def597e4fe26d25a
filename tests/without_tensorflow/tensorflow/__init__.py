"""Stands in for TensorFlow on the path of the JAX tests: importing it fails as on a machine
without TensorFlow, so a stray ``import tensorflow`` in nblib shows up as a failure."""

raise ImportError("TensorFlow is not installed here (the JAX tests hide it on purpose)")
