"""pointly.model: Panoptic FCN in plain PyTorch + torchvision, training, inference, evaluation.

The public API, imported from here::

    from pointly.model import PanopticFCN, build_panoptic_fcn, load_checkpoint

* :func:`build_panoptic_fcn` (a :class:`~pointly.model.engine.config.Config`) → the network, the
  one place where the config becomes module arguments (docs/model.md);
* :class:`PanopticFCN`: the network itself, built from keyword arguments;
* :func:`load_checkpoint` (a run's ``model_final.pth``) → the network in eval mode.

The names are loaded on first use (PEP 562), so ``import pointly.model`` does not import torch.
Library modules import the module that defines a name, never this package root
(docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pointly.pointgen.base.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.checkpoint import load_checkpoint
    from pointly.model.network.panoptic_fcn import PanopticFCN

#: public name -> the module that defines it
_EXPORTS = {
    "PanopticFCN": "pointly.model.network.panoptic_fcn",
    "build_panoptic_fcn": "pointly.model.engine.build",
    "load_checkpoint": "pointly.model.engine.checkpoint",
}

__all__ = ["PanopticFCN", "build_panoptic_fcn", "load_checkpoint"]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals(), __all__)
