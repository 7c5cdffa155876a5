"""Panoptic Quality (PQ, SQ, RQ): the one computation, as panopticapi's ``pq_compute`` computes it.

Both the target quality (:mod:`pointly.pointgen.targets.quality`, targets read as a prediction)
and the model's evaluation (:mod:`pointly.model.engine.evaluation`, predicted PNG files) score
through :func:`panoptic_quality`. The arithmetic is hotcoco's ``PanopticEval`` (Rust);
tests/model/engine/test_eval_pq_reference.py checks its numbers against panopticapi itself and an
independent re-implementation on real data.

hotcoco takes either form of input, and so does :func:`panoptic_quality`:

* **PNG form**: COCO panoptic dicts (``annotations[].segments_info``) with the PNG files in
  ``gt_folder`` / ``pred_folder`` (what ``pointly evaluate`` scores);
* **mask form**: one annotation per segment with an RLE ``segmentation``, no files
  (:func:`pq_from_segments`, what the target quality scores).

The result has panopticapi's shape: ``{"All", "Things", "Stuff"}``, each ``{"pq", "sq", "rq", "n"}``
(fractions in [0, 1]; ``n`` the number of categories averaged), plus ``"per_class"`` (category id →
``{"pq", "sq", "rq", "tp", "fp", "fn", "iou"}``, in the ground truth's category order):

* a category with no TP, FP or FN is reported ``0.0`` (panopticapi's value; hotcoco says ``-1.0``)
  and left out of the averages, as both do;
* a group with no evaluable category (e.g. no stuff anywhere) makes panopticapi divide by zero;
  it is reported ``pq = sq = rq = 0.0`` with ``n = 0``;
* ``tp``, ``fp``, ``fn`` and ``iou`` (the summed IoU of the matches) are hotcoco's per-class counts,
  which panopticapi computes but does not return.

panopticapi's quirks are kept: the ground-truth area comes from the JSON ``area`` field, the
predicted area from the PNG; a match needs IoU strictly above 0.5 with a union that subtracts
only prediction ∩ VOID; an unmatched prediction is ignored only if its VOID plus
same-category-crowd share is strictly above 0.5; only the last crowd region per category and
image counts; predictions for images absent from the ground truth are ignored.

Input checks with file names and fixes are the callers' (the evaluation's checks stay in
:mod:`pointly.model.engine.evaluation`); hotcoco's own errors (``ValueError``, ``KeyError``,
``OSError``) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from typing import Any

#: the result's groups: (key, isthing filter)
GROUPS: tuple[tuple[str, bool | None], ...] = (("All", None), ("Things", True), ("Stuff", False))
METRICS = ("pq", "sq", "rq")

__all__ = ["GROUPS", "METRICS", "normalise", "panoptic_quality", "pq_from_segments"]


def panoptic_quality(
    gt: Mapping[str, Any],
    pred: Mapping[str, Any],
    *,
    gt_folder: str | PathLike | None = None,
    pred_folder: str | PathLike | None = None,
) -> dict:
    """Score ``pred`` against ``gt`` (COCO dicts with integer image ids and ``gt["categories"]``).

    With ``gt_folder`` and ``pred_folder`` the dicts are the PNG form, without them the mask form
    (module docstring). Returns the normalised result (:func:`normalise`).
    """
    from hotcoco.panoptic import PanopticEval

    if gt_folder is None and pred_folder is None:
        ev = PanopticEval(gt, pred)
    else:
        ev = PanopticEval(gt, pred, gt_folder=str(gt_folder), pred_folder=str(pred_folder))
    ev.evaluate()
    return normalise(ev.results(), gt["categories"])


def pq_from_segments(
    images: Sequence[Mapping[str, Any]],
    gt_segments: Sequence[Mapping[str, Any]],
    pred_segments: Sequence[Mapping[str, Any]],
    categories: Sequence[Mapping[str, Any]],
) -> dict:
    """PQ in the mask form: one dict per segment (``image_id``, ``category_id``, ``iscrowd``, an RLE
    ``segmentation``, ``area``, ``bbox``), no files. ``images`` are COCO image records (``id``,
    ``width``, ``height``, ``file_name``); annotation ids are assigned here (ground truth 1..N, then
    the predictions)."""
    gt_anns = [{**a, "id": i} for i, a in enumerate(gt_segments, start=1)]
    pred_anns = [{**a, "id": i} for i, a in enumerate(pred_segments, start=len(gt_anns) + 1)]
    images, categories = list(images), list(categories)
    gt = {"images": images, "annotations": gt_anns, "categories": categories}
    pred = {"images": images, "annotations": pred_anns, "categories": categories}
    return panoptic_quality(gt, pred)


def normalise(raw: Mapping[str, Any], categories: Sequence[Mapping[str, Any]]) -> dict:
    """hotcoco's results → panopticapi's structure (0.0 for unseen categories, n=0 → 0.0)."""
    out: dict[str, Any] = {}
    for name, _ in GROUPS:
        g = raw[name]
        n = int(g["n"])
        out[name] = {k: (float(g[k]) if n > 0 else 0.0) for k in METRICS}
        out[name]["n"] = n
    per_class = {}
    raw_pc = raw["per_class"]
    for c in categories:
        r = raw_pc.get(c["id"])
        if r is None:  # hotcoco lists every ground-truth category; this is a safeguard
            r = {"pq": -1.0, "sq": -1.0, "rq": -1.0, "tp": 0, "fp": 0, "fn": 0, "iou": 0.0}
        counted = (int(r.get("tp", 0)) + int(r.get("fp", 0)) + int(r.get("fn", 0))) > 0
        entry = {k: (float(r[k]) if counted else 0.0) for k in METRICS}
        entry.update(
            {
                "tp": int(r.get("tp", 0)),
                "fp": int(r.get("fp", 0)),
                "fn": int(r.get("fn", 0)),
                "iou": float(r.get("iou", 0.0)),
            }
        )
        per_class[c["id"]] = entry
    out["per_class"] = per_class
    return out
