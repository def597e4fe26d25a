"""Keep the frameworks' start-up messages off what a person reads: a console, a notebook's page.

On a machine without a GPU, importing TensorFlow and its first look for devices write C++ log
lines to file descriptor 2 (absl's "All log messages before absl::InitializeLog()", "Could not
find cuda drivers", "failed call to cuInit", oneDNN and CPU-feature lines), some of them before
``TF_CPP_MIN_LOG_LEVEL`` is read, and later tf.data lines at error level that are not errors of
ours; Keras and JAX add Python log records. A Jupyter kernel forwards descriptor 2 into the
notebook, where they make a red block at the top of every page. They say nothing about the
radiographs, so :func:`silenced` sends descriptor 2 to a temporary file while the frameworks
load, and :func:`load_frameworks` (a notebook's first step) loads them that way once per process
and keeps what they said for :func:`messages`. A set ``TF_CPP_MIN_LOG_LEVEL`` is the user's and
is kept; ``CUDA_VISIBLE_DEVICES`` is never touched: a GPU is used when there is one.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile

FRAMEWORK_LOGGERS = ("tensorflow", "absl", "jax", "jax._src.xla_bridge", "keras", "h5py")
LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"

_captured: list[str] = []


def messages() -> str:
    """What the frameworks wrote while :func:`load_frameworks` loaded them (empty if not yet)."""
    return "".join(_captured)


@contextlib.contextmanager
def silenced(verbose: bool = False, keep: tuple[type[BaseException], ...] = ()):
    """Descriptor 2 into a temporary file and ``sys.stderr`` into a buffer while the block runs, the
    frameworks' loggers at errors only and ``TF_CPP_MIN_LOG_LEVEL=3`` (both restored after).

    If the block fails with anything but an exception of ``keep`` (usage errors, which explain
    themselves), what was written is replayed on stderr, so nothing that explains a crash is
    lost. Yields a list that holds the captured text after the block. ``verbose`` leaves
    everything as it is."""
    captured: list[str] = []
    if verbose:
        yield captured
        return
    level = os.environ.get(LEVEL_VARIABLE)
    os.environ[LEVEL_VARIABLE] = "3"
    loggers = {name: logging.getLogger(name) for name in FRAMEWORK_LOGGERS}
    levels = {name: lg.level for name, lg in loggers.items()}
    for lg in loggers.values():
        lg.setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    log = tempfile.TemporaryFile()
    os.dup2(log.fileno(), 2)
    # sys.stderr too: in a Jupyter kernel it is not descriptor 2 but a stream into the page
    python_side = io.StringIO()
    failed = True
    try:
        with contextlib.redirect_stderr(python_side):
            yield captured
        failed = False
    except keep:
        failed = False
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        log.seek(0)
        captured.append(log.read().decode(errors="replace") + python_side.getvalue())
        log.close()
        if failed:
            sys.stderr.write(captured[-1])
            sys.stderr.flush()
        for name, lg in loggers.items():
            lg.setLevel(levels[name])
        if level is None:
            os.environ.pop(LEVEL_VARIABLE, None)
        else:
            os.environ[LEVEL_VARIABLE] = level


def load_frameworks() -> str:
    """Load Keras, its backend and the device list quietly, once per process; returns the
    backend's name. For a notebook's first cell, before anything imports a framework.

    The C++ log level stays at 3 for the rest of the process unless the user set one (the
    tf.data error-level lines of later cells are framework noise too); set
    ``TF_CPP_MIN_LOG_LEVEL`` before starting Jupyter to see them."""
    user_level = os.environ.get(LEVEL_VARIABLE)
    with silenced() as captured:
        import keras  # noqa: F401  (the import is the point)

        backend = keras.backend.backend()
        if backend == "tensorflow":
            from nblib.core import tfbackend

            tfbackend.gpu_names()
        elif backend == "jax":
            import jax

            jax.devices()
    _captured.extend(captured)
    os.environ[LEVEL_VARIABLE] = user_level if user_level is not None else "3"
    return backend
