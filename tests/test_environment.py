"""The installed environment is the pinned one: requirements/lock-py3.X.txt, made by scripts/lock.sh.

The two README commands install from the lock file of the running Python's version
(scripts/bootstrap.sh); every pinned package must be installed at exactly its pinned version.
BONEAGE_UNLOCKED=1 (an install of newer, unpinned packages) skips that check, by choice.
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
LOCKS = ROOT / "requirements"
SUPPORTED = ("3.10", "3.11", "3.12", "3.13")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, Requirement]:
    """Every ``name==version`` line of a lock file (comments and "via" lines skipped), by name."""
    pins: dict[str, Requirement] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            pytest.fail(f"{path.name}:{number}: unexpected option line {raw!r}")
        req = Requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
            pytest.fail(f"{path.name}:{number}: not an exact pin: {raw!r}")
        pins[normalize(req.name)] = req
    return pins


def pinned_version(req: Requirement) -> str:
    return next(iter(req.specifier)).version


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        for dist in metadata.distributions():
            if normalize(dist.metadata["Name"] or "") == name:
                return dist.version
        return None


def project_requirements() -> list[Requirement]:
    """pyproject.toml's dependencies plus the "dev" extra: what the lock files resolve."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in names]


def test_installed_versions_equal_the_lock():
    if os.environ.get("BONEAGE_UNLOCKED") == "1":
        pytest.skip("BONEAGE_UNLOCKED=1: the environment was installed unpinned on purpose")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    lock = LOCKS / f"lock-py{version}.txt"
    assert lock.is_file(), (
        f"no lock file for Python {version} ({lock}); supported: {', '.join(SUPPORTED)}"
    )
    env = default_environment()
    mismatched = []
    for name, req in sorted(read_lock(lock).items()):
        if req.marker is not None and not req.marker.evaluate(env):
            continue  # not for this platform / Python
        want = pinned_version(req)
        have = installed_version(name)
        if have is None:
            mismatched.append(f"{name}: locked {want}, not installed")
        elif Version(have) != Version(want):
            mismatched.append(f"{name}: locked {want}, installed {have}")
    assert not mismatched, (
        f"{len(mismatched)} package(s) differ from requirements/{lock.name} "
        "(re-install with scripts/bootstrap.sh, or set BONEAGE_UNLOCKED=1 on purpose):\n  "
        + "\n  ".join(mismatched)
    )


@pytest.mark.parametrize("version", SUPPORTED)
def test_lock_file_pins_the_frameworks(version):
    lock = LOCKS / f"lock-py{version}.txt"
    assert lock.is_file(), f"missing {lock}; run scripts/lock.sh"
    pins = read_lock(lock)
    assert pins, f"{lock.name} pins nothing"
    for name in ("tensorflow", "keras", "numpy", "jax"):
        assert name in pins, f"{lock.name} does not pin {name}"
    assert "boneage-repro" not in pins, f"{lock.name} pins the project itself"
    stale = []
    for req in project_requirements():
        pin = pins.get(normalize(req.name))
        if pin is None:
            stale.append(f"{req} is not pinned")
        elif not SpecifierSet(str(req.specifier)).contains(pinned_version(pin), prereleases=True):
            stale.append(f"{req} is pinned at {pinned_version(pin)}")
    assert not stale, (
        f"{lock.name} is out of date with pyproject.toml (run scripts/lock.sh): " + "; ".join(stale)
    )
