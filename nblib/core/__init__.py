"""The floor everything stands on: configuration, the names and I/O of a run's files, provenance,
locks, timing, and the runtime (backend, seeds, precision, distribution) with the one module that
touches TensorFlow directly. Imports nothing above it."""
