"""The runtime a notebook trains in: backend, accelerators, seeds and determinism, precision
policy and distribution strategy (:func:`setup`, the first call of every training notebook).
"""

from __future__ import annotations

import os

import keras


def backend() -> str:
    """The Keras backend in use: ``tensorflow`` (the default), ``jax`` or ``torch``."""
    return keras.backend.backend()


def accelerators() -> list[str]:
    """Names of the GPUs the backend sees (empty on a CPU-only machine)."""
    b = backend()
    if b == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    if b == "torch":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [torch.cuda.get_device_name(i) for i in range(n)]
    from nblib.core import tfbackend

    return tfbackend.gpu_names()


def gpu_present() -> bool:
    return bool(accelerators())


def switch(value: str) -> bool:
    return value == "on" or (value == "auto" and gpu_present())


BF16_COMPUTE_CAPABILITY = (8, 0)  # NVIDIA Ampere and later compute in bfloat16 natively


def compute_capabilities() -> list[tuple[int, int]]:
    """CUDA compute capability (major, minor) of each GPU the backend sees; empty on a CPU."""
    b = backend()
    if b == "jax":
        import jax

        return [
            tuple(int(v) for v in str(getattr(d, "compute_capability", "0.0")).split(".")[:2])
            for d in jax.devices()
            if d.platform == "gpu"
        ]
    if b == "torch":
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return [tuple(torch.cuda.get_device_capability(i)) for i in range(n)]
    from nblib.core import tfbackend

    return tfbackend.compute_capabilities()


def mixed_policy(capabilities: list[tuple[int, int]]) -> str:
    """``mixed_bfloat16`` on CPUs and on GPUs of compute capability 8.0 or later (every one of
    them), else ``mixed_float16``, which older GPUs run at speed."""
    old = [c for c in capabilities if tuple(c) < BF16_COMPUTE_CAPABILITY]
    return "mixed_float16" if old else "mixed_bfloat16"


def precision_policy(cfg) -> str:
    """``float32``, or with mixed precision on, :func:`mixed_policy` of the GPUs present."""
    if not switch(cfg.mixed_precision):
        return "float32"
    return mixed_policy(compute_capabilities())


def strategy_kind(requested: str, n_gpus: int, tf_config: str | None) -> str:
    """Which distribution strategy ``requested`` means on this machine.

    ``auto`` = ``multiworker`` when ``TF_CONFIG`` describes a cluster, ``mirrored`` when more than
    one GPU is visible, ``default`` (one device) otherwise; any other value is taken as given.
    """
    if requested != "auto":
        return requested
    if tf_config:
        return "multiworker"
    return "mirrored" if n_gpus > 1 else "default"


class _NoScope:
    """What ``setup`` returns where the backend distributes without a scope (JAX, PyTorch)."""

    num_replicas_in_sync = 1

    def scope(self):
        import contextlib

        return contextlib.nullcontext()


def make_deterministic(cfg) -> None:
    """Seed everything and make the backend's kernels deterministic when ``cfg.deterministic``.

    TensorFlow: ``tf.config.experimental.enable_op_determinism`` (ops without a deterministic
    kernel then raise instead of varying). JAX: XLA's ``--xla_gpu_deterministic_ops`` flag (XLA on
    a CPU is deterministic already), which JAX reads when it first touches a device: a notebook
    calls this before building any model. The input feed's order is a pure function of (seed,
    epoch) whatever the backend.
    """
    from nblib.core import config

    config.set_seed(cfg.seed)
    if not cfg.deterministic:
        return
    b = backend()
    if b == "tensorflow":
        from nblib.core import tfbackend

        tfbackend.enable_determinism()
    elif b == "jax":
        flag = "--xla_gpu_deterministic_ops=true"
        if flag not in os.environ.get("XLA_FLAGS", ""):
            os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + flag).strip()
    elif b == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def setup(cfg):
    """Seed, determinism, precision policy and distribution for ``cfg``; return a strategy.

    The returned object has ``scope()`` and ``num_replicas_in_sync``. TensorFlow:
    ``tf.distribute`` (MultiWorkerMirroredStrategy when ``TF_CONFIG`` is set, MirroredStrategy
    over several GPUs, or over the logical CPUs when ``mirrored`` is asked for on a CPU). JAX:
    ``keras.distribution.DataParallel`` over every device (after ``jax.distributed.initialize()``
    when ``multiworker`` is asked for), set globally, with a no-op scope. Mixed precision follows
    :func:`precision_policy`; the models keep their input layers and output in float32.
    """
    make_deterministic(cfg)
    keras.mixed_precision.set_global_policy(precision_policy(cfg))
    b = backend()
    if b == "jax":
        import jax

        kind = strategy_kind(cfg.strategy, len(accelerators()), os.environ.get("TF_CONFIG"))
        if kind == "multiworker":
            jax.distributed.initialize()
        if kind in ("mirrored", "multiworker") and len(jax.devices()) > 1:
            keras.distribution.set_distribution(
                keras.distribution.DataParallel(devices=jax.devices())
            )
        return _NoScope()
    if b != "tensorflow":
        return _NoScope()
    from nblib.core import tfbackend

    gpus = len(accelerators())
    return tfbackend.strategy(strategy_kind(cfg.strategy, gpus, os.environ.get("TF_CONFIG")))
