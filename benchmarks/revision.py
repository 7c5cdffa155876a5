"""Import modules of ``pointly.pointgen`` as they were at an earlier git revision, beside the
current ones, for in-process before/after benchmarks (same process, same inputs, alternating
calls: the fair comparison on a shared machine).

    old = load_revision("HEAD~1", ["raster", "targets"])
    old["targets"].build_targets(...)   # uses the old raster too; everything else is current

Only the named modules are taken from the revision; their imports of each other are redirected
to the old copies, every other import stays on the installed package.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_revision(rev: str, modules: list[str], package: str = "pointgen") -> dict[str, ModuleType]:
    """``{name: module}`` of ``<package>/<name>.py`` at git revision ``rev``."""
    root = Path(tempfile.mkdtemp(prefix="pointly-rev-"))
    # one package per call (a second call for the same revision gets its own modules)
    alias = "pointly_rev_" + re.sub(r"\W", "_", f"{rev}_{root.name}")
    pkg = root / alias
    pkg.mkdir()
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    names = "|".join(re.escape(m) for m in modules)
    for name in modules:
        src = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{rev}:{package}/{name}.py"], check=True, capture_output=True, text=True
        ).stdout
        src = re.sub(rf"from (?:pointly\.{package}|)\.({names})\b", rf"from {alias}.\1", src)
        # ``from pointly.pointgen import sampling`` (a module of the list imported by name)
        src = re.sub(
            rf"^from pointly\.{package} import ({names})$", rf"from {alias} import \1", src, flags=re.MULTILINE
        )
        src = re.sub(r"from \.(\w+)", rf"from pointly.{package}.\1", src)  # other relative imports
        (pkg / f"{name}.py").write_text(src, encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        return {name: importlib.import_module(f"{alias}.{name}") for name in modules}
    finally:
        sys.path.remove(str(root))


def modules_at(rev: str, wanted: list[str], package: str = "pointgen") -> list[str]:
    """The names of ``wanted`` that exist as ``<package>/<name>.py`` at ``rev`` (a module added
    later, e.g. ``batched_pools``, is then taken from the revision whenever it has one)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", rev, f"{package}/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    present = {Path(p).stem for p in out}
    return [m for m in wanted if m in present]
