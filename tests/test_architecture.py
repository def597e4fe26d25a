"""The library's layout: floors that import only downward, and no import circle.

Every import of an nblib module is read from the source, those inside functions included (a
deferred import is still a dependency), so a circle cannot hide behind a late import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from nblib.core import config

NBLIB = config.ROOT / "nblib"

# Each package's floor: a module may import its own package and any package on a lower floor.
FLOORS = {
    "core": 0,
    "data": 1,
    "models": 1,
    "train": 2,
    "report": 3,
    "experiments": 4,
    "apps": 5,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(config.ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The nblib modules ``path`` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nblib")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nblib"):
            for a in node.names:  # ``from nblib.data import pipeline`` names a module
                sub = f"{node.module}.{a.name}"
                is_module = (config.ROOT / Path(*sub.split(".")).with_suffix(".py")).is_file()
                found.add(sub if is_module else node.module)
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the nblib modules it imports (packages' ``__init__`` left out as targets)."""
    return {_module_name(p): _imports(p) for p in sorted(NBLIB.rglob("*.py"))}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else None


def test_every_module_lives_in_a_floor_package():
    loose = [m for m in graph() if m != "nblib" and _package(m) not in FLOORS and m.count(".") > 0]
    loose = [m for m in loose if m.split(".")[1] not in FLOORS]
    assert not loose, f"modules outside the floor packages {sorted(FLOORS)}: {loose}"


def test_imports_go_down_the_floors_only():
    upward = []
    for module, targets in graph().items():
        src = _package(module)
        if src is None:
            continue
        for t in targets:
            dst = _package(t) or (t.split(".")[1] if t.count(".") else None)
            if dst is None or dst == src:
                continue
            if FLOORS[dst] >= FLOORS[src]:
                upward.append(f"{module} -> {t} ({src} floor {FLOORS[src]}, {dst} {FLOORS[dst]})")
    assert not upward, "imports that do not go down a floor:\n" + "\n".join(sorted(upward))


def _cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(g.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t) :] + [t]
            if t in g and not state.get(t):
                found = visit(t)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(g):
        if not state.get(m):
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_circle():
    circle = _cycle(graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_check_finds_a_circle_and_an_upward_import():
    """The checks above would fail on a layout that breaks them (a made-up graph)."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
    assert _package("nblib.core.config") == "core"


@pytest.mark.parametrize("module", sorted(m for m in graph() if m.count(".") == 2))
def test_module_imports_alone(module):
    """Each module imports in a fresh namespace (no import that works only after another)."""
    import importlib

    importlib.import_module(module)


def _layout_block() -> list[str]:
    text = (config.ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Layout", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_layout_block_matches_the_tree():
    """Every package line of the README's layout names exactly the modules in that folder, and
    every top-level folder it names exists."""
    listed = {}
    for line in _layout_block():
        name, _, rest = line.strip().partition("/")
        if line.startswith("  "):
            listed[name] = {m.strip() for m in rest.split(",")}
        else:
            assert (config.ROOT / name).is_dir(), f"the README's layout names {name}/, absent"
    actual = {
        d.name: {p.stem for p in d.glob("*.py") if p.stem != "__init__"}
        for d in NBLIB.iterdir()
        if d.is_dir() and (d / "__init__.py").is_file()
    }
    assert listed == actual


def test_notebooks_are_numbered_without_a_gap():
    numbers = sorted(
        int(p.name[:2]) for p in (config.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")
    )
    assert numbers == list(range(1, len(numbers) + 1))
