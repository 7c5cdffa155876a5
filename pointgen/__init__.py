"""pointly.pointgen: points from masks (simulator), the points JSON format, training targets
from points, the annotation-cost model and panoptic quality.

The public API, imported from here::

    from pointly.pointgen import SimulationOptions, TargetOptions, build_targets, simulate

* :func:`simulate` (``dataset``, :class:`SimulationOptions`) → the points document and its
  summary (docs/simulate.md);
* :func:`build_targets` (one image's point annotations, :class:`TargetOptions`) → the training
  targets of that image (docs/targets.md).

The names are loaded on first use (PEP 562), so ``import pointly.pointgen`` stays cheap. Library
modules import the module that defines a name, never this package root (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pointly.pointgen.base.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.build import build_targets
    from pointly.pointgen.targets.options import TargetOptions

#: public name -> the module that defines it
_EXPORTS = {
    "simulate": "pointly.pointgen.points.simulate",
    "SimulationOptions": "pointly.pointgen.points.simulate",
    "build_targets": "pointly.pointgen.targets.build",
    "TargetOptions": "pointly.pointgen.targets.options",
}

__all__ = ["SimulationOptions", "TargetOptions", "build_targets", "simulate"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
