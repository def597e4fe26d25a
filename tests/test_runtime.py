"""nblib.core.runtime and nblib.core.provenance: the precision policy by compute capability, and
the CPU a result came from."""

from __future__ import annotations

from nblib.core import provenance, runtime


def test_bf16_needs_compute_capability_8_on_every_gpu():
    assert runtime.mixed_policy([]) == "mixed_bfloat16"  # a CPU computes bf16
    assert runtime.mixed_policy([(8, 0)]) == "mixed_bfloat16"  # A100
    assert runtime.mixed_policy([(9, 0), (9, 0)]) == "mixed_bfloat16"  # H100s
    assert runtime.mixed_policy([(7, 5)]) == "mixed_float16"  # T4
    assert runtime.mixed_policy([(8, 6), (7, 0)]) == "mixed_float16"  # one old GPU decides


def test_cpu_model_and_vector_flags_are_read_from_cpuinfo():
    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n"
    )
    got = provenance.cpu(text)
    assert got == {"model": "AMD EPYC 7B13", "vector_flags": ["avx", "avx2", "fma"]}
    amx = provenance.cpu("model name : Xeon\nflags : avx2 avx512f amx_tile amx_bf16\n")
    assert amx["vector_flags"] == ["avx2", "avx512f", "amx_tile", "amx_bf16"]


def test_this_machine_is_described():
    info = provenance.hardware()
    assert info["cpus"] >= 1 and "vector_flags" in info["cpu"]
