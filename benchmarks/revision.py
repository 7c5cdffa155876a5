"""Import pointly as it was at an earlier git revision, beside the current one, for in-process
before/after benchmarks (same process, same inputs, alternating calls: the fair comparison on a
shared machine).

    old = load_revision("HEAD~1", ["targets/build"])
    old["targets/build"].build_targets(...)   # entirely the revision's code

The revision's whole source tree (``pointgen/``, ``model/``, ``data/``, ...) is extracted into a
temporary package with every ``pointly.`` import redirected to it, so an old module runs with its
own helpers whatever has moved since. Modules are named by their path under ``package`` without
``.py`` (``raster`` in the flat layout of early revisions, ``targets/raster`` since the package has
layers); :func:`modules_at` finds the path a revision has for a bare name.
"""

from __future__ import annotations

import importlib
import io
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
#: the source folders that are import packages of pointly (pyproject.toml's package-dir)
PACKAGES = ("annotator", "pointgen", "model", "cli", "data")


def load_revision(rev: str, modules: list[str], package: str = "pointgen") -> dict[str, ModuleType]:
    """``{name: module}`` of ``<package>/<name>.py`` as the code at git revision ``rev`` has it."""
    root = Path(tempfile.mkdtemp(prefix="pointly-rev-"))
    alias = "pointly_rev_" + re.sub(r"\W", "_", f"{rev}_{root.name}")  # one package per call
    pkg = root / alias
    tree = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "--name-only", rev], check=True, capture_output=True, text=True
    )
    folders = [p for p in PACKAGES if p in tree.stdout.split()]
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, *folders], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(pkg, filter="data")
    (pkg / "__init__.py").write_text("", encoding="utf-8")
    names = "|".join(PACKAGES)
    for path in pkg.rglob("*.py"):
        src = path.read_text(encoding="utf-8")
        src = re.sub(rf"\bpointly\.({names})\b", rf"{alias}.\1", src)
        src = re.sub(r"\bfrom pointly import\b", f"from {alias} import", src)
        path.write_text(src, encoding="utf-8")
    sys.path.insert(0, str(root))
    try:
        return {name: importlib.import_module(f"{alias}.{package}.{name.replace('/', '.')}") for name in modules}
    finally:
        sys.path.remove(str(root))


def modules_at(rev: str, wanted: list[str], package: str = "pointgen") -> list[str]:
    """The paths (under ``package``, without ``.py``) that the names ``wanted`` have at ``rev``: a
    bare name (``raster``) is found at the top or in one sub-folder (``targets/raster``); a name
    the revision does not have is left out (a module added later)."""
    out = subprocess.run(
        ["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", rev, f"{package}/"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    present = [p[len(package) + 1 : -3] for p in out if p.endswith(".py")]
    found = []
    for name in wanted:
        hits = [p for p in present if p == name or p.endswith("/" + name)]
        if len(hits) == 1:
            found.append(hits[0])
    return found
