"""The layers of pointly point one way: a module may import its own layer and the layers below it,
never a layer above (docs/architecture.md draws them). Imports inside functions count too: a lazy
import that points upward is still a dependency upward."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOP = {
    "annotator": "pointly.annotator",
    "pointgen": "pointly.pointgen",
    "model": "pointly.model",
    "cli": "pointly.cli",
    "data": "pointly.data",
}

#: bottom to top; a package's modules may import packages of the same or a lower rank
LAYERS = [
    ("base", ["pointly.pointgen.base"]),
    ("points, targets", ["pointly.pointgen.points", "pointly.pointgen.targets", "pointly.pointgen.metrics"]),
    ("interoperability", ["pointly.pointgen.interop"]),
    ("datasets", ["pointly.data"]),
    ("network", ["pointly.model.network"]),
    ("engine", ["pointly.model.engine"]),
    ("study", ["pointly.model.study"]),
    ("annotator", ["pointly.annotator"]),
    ("cli", ["pointly.cli"]),
]
RANK = {pkg: rank for rank, (_, pkgs) in enumerate(LAYERS) for pkg in pkgs}
#: package roots that hold only the curated public API; library modules import the real module
FACADES = {"pointly.pointgen", "pointly.model"}


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO)
    parts = [TOP[rel.parts[0]], *rel.with_suffix("").parts[1:]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> str | None:
    best = None
    for pkg in RANK:
        if (name == pkg or name.startswith(pkg + ".")) and (best is None or len(pkg) > len(best)):
            best = pkg
    return best


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, absolute module)`` of every pointly import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("pointly")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("pointly"):
                # ``from pointly.x import y`` may name a submodule y: judge the most specific one
                out += [
                    (node.lineno, f"{target}.{a.name}") if layer_of(f"{target}.{a.name}") else (node.lineno, target)
                    for a in node.names
                ]
    return out


def library_files() -> list[Path]:
    return sorted(p for top in TOP for p in (REPO / top).rglob("*.py"))


def violations() -> list[str]:
    found = []
    for path in library_files():
        me = module_name(path)
        mine = layer_of(me)
        for line, target in imports_of(path):
            where = f"{path.relative_to(REPO)}:{line} imports {target}"
            if target in FACADES and mine is not None:
                found.append(f"{where} (a package's public API; import the module that defines it)")
                continue
            theirs = layer_of(target)
            if mine is None or theirs is None:
                continue
            if RANK[theirs] > RANK[mine]:
                found.append(f"{where} ({LAYERS[RANK[mine]][0]} -> {LAYERS[RANK[theirs]][0]}, upward)")
    return found


def test_the_annotator_never_imports_the_model():
    """The annotator previews targets from points; it needs no network, engine or study."""
    found = [
        f"{p.relative_to(REPO)}:{line} imports {target}"
        for p in sorted((REPO / "annotator").rglob("*.py"))
        for line, target in imports_of(p)
        if target.startswith("pointly.model")
    ]
    assert found == []


def test_every_library_module_has_a_layer():
    unplaced = [
        module_name(p) for p in library_files() if layer_of(module_name(p)) is None and module_name(p) not in FACADES
    ]
    assert unplaced == []


#: upward imports not yet removed, each with its reason; the list only shrinks
KNOWN: set[str] = set()


def test_no_import_points_upward():
    assert sorted(set(violations()) - KNOWN) == []


@pytest.mark.parametrize(
    "source, expected",
    [
        ("from pointly.model.engine.config import Config\n", 1),  # network -> engine
        ("from pointly.pointgen.base.errors import PointlyError\n", 0),
        ("def f():\n    from pointly.cli.main import main\n", 1),  # lazy, still upward
        ("from pointly.model import engine\n", 1),  # a submodule named in from-import
    ],
)
def test_the_checker_sees_upward_imports(tmp_path, monkeypatch, source, expected):
    """An independent check of the checker: a fake network module with a known import."""
    fake_repo = tmp_path
    (fake_repo / "model" / "network").mkdir(parents=True)
    f = fake_repo / "model" / "network" / "fake.py"
    f.write_text(source, encoding="utf-8")
    monkeypatch.setitem(globals(), "REPO", fake_repo)
    assert len(violations()) == expected
