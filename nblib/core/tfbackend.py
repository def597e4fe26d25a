"""Everything TensorFlow-specific by nature, in one place: the ``tf.data`` feed, ``tf.distribute``
strategies, the GPU list, the determinism switch and Grad-CAM's gradient. No other module imports
TensorFlow; under JAX or PyTorch this module is never imported.

The feed: under JAX and PyTorch, Keras is fed by the backend-neutral ``pipeline.batches``
(a PyDataset); under TensorFlow by :func:`dataset`, which was measured faster.
"""

from __future__ import annotations

import tensorflow as tf

MAX_IN_GRAPH_BYTES = 1_500_000_000  # larger caches are fed by a generator (graph limit 2 GB)


def dataset(source) -> tf.data.Dataset:
    """A ``tf.data.Dataset`` over a :class:`~nblib.data.pipeline.BatchSource`'s cache and settings.

    The cache goes into the graph (``from_tensor_slices``) and ``shuffle`` reorders it each epoch
    from the seed: deterministic, and faster than feeding the same batches from Python, as a
    generator or a PyDataset does (``python -m nblib.apps.benchmark feeds``; ``benchmarks/cpu.md``). Caches over 1.5 GB (the graph's 2 GB limit) are fed from the
    source's own seeded order through a generator instead.
    """
    images, labels, extra = source.images[..., None], source.labels, source.extra
    s, n = images.shape[1], len(images)
    if images.nbytes <= MAX_IN_GRAPH_BYTES:
        inputs = images if extra is None else (images, extra)
        ds = tf.data.Dataset.from_tensor_slices((inputs, labels))
        if source.training:
            ds = ds.shuffle(n, seed=source.seed, reshuffle_each_iteration=True)
        ds = ds.batch(source.batch_size)
    else:

        def gen():
            for i in range(len(source)):
                x, y = source.batch_indices(i)
                yield (images[x] if extra is None else (images[x], extra[x])), labels[y]
            source.set_epoch(source.epoch + 1)

        image_spec = tf.TensorSpec([None, s, s, 1], tf.uint8)
        if extra is not None:
            image_spec = (image_spec, tf.TensorSpec([None, 1], tf.float32))
        sig = (image_spec, tf.TensorSpec([None], tf.float32))
        ds = tf.data.Dataset.from_generator(gen, output_signature=sig)
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(source)))
    if source.target == "image":
        ds = ds.map(lambda x, y: (x, tf.cast(x, tf.float32) * (1.0 / 255.0)))
    elif source.target is None:
        ds = ds.map(lambda x, y: x)
    ds = ds.prefetch(2)
    opts = tf.data.Options()
    # Autotuning re-plans buffers at every epoch boundary; on a small CPU it stalled fit() for
    # seconds per epoch. A fixed prefetch depth keeps the model fed without it.
    opts.autotune.enabled = False
    opts.deterministic = True
    ds = ds.with_options(opts)
    ds.source = source  # its arrays, for a pass in fixed order (averaging.reestimate_batch_norm)
    return ds


def gradient(fn, x):
    """``d sum(fn(x)) / dx`` at ``x`` (a float array), as NumPy: what Grad-CAM needs."""
    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reduce_sum(fn(x))
    return tape.gradient(y, x).numpy()


def strategy(kind: str):
    """The ``tf.distribute`` strategy of ``kind``: default, mirrored or multiworker.

    ``mirrored`` without GPUs mirrors over the logical CPU devices, which is how the tests check
    it on a CPU.
    """
    if kind == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def gpu_names() -> list[str]:
    """Names of the GPUs TensorFlow sees."""
    return [
        tf.config.experimental.get_device_details(g).get("device_name", g.name)
        for g in tf.config.list_physical_devices("GPU")
    ]


def compute_capabilities() -> list[tuple[int, int]]:
    """(major, minor) CUDA compute capability of each visible GPU; (0, 0) where not reported."""
    out = []
    for gpu in tf.config.list_physical_devices("GPU"):
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        out.append(tuple(cc) if cc else (0, 0))
    return out


def enable_determinism() -> None:
    """Deterministic kernels (ops without one raise rather than vary from run to run)."""
    tf.config.experimental.enable_op_determinism()
