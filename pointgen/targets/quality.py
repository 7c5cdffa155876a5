"""Target quality against the true masks, without training: precision, recall, IoU, coverage, PQ.

For every annotated segment the target mask (after conflicts, point labels and dilation, i.e.
exactly what training sees as positives) is compared with the true segment it came from:

* **precision** = |target ∩ true| / |target| (share of the shape inside the true segment;
  NaN when the target is empty),
* **recall** = |target ∩ true| / |true| (share of the true segment covered),
* **iou** = |target ∩ true| / |target ∪ true|.

The true segment is the annotation's ``source_segment_id`` (simulated points) or, when absent
(clicked points), the true segment holding most of the annotation's points.

Per image: **coverage** (share of pixels with a target, i.e. not ignored), **ignore share**
(= 1 − coverage) and **agreement** (share of covered pixels whose target is the segment the
pixel truly belongs to).

**PQ of the targets**: the targets read as a panoptic prediction (every target segment is a
predicted segment with its category; ignored pixels are VOID), scored against the true
panoptic annotation by :mod:`pointly.pointgen.metrics.pq` (the PQ the model's evaluation uses too)
in memory: both sides are one RLE mask per segment, no PNG files. A split with no category to
average (e.g. no stuff) is NaN here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pointly.pointgen.base.coco import Segment
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.metrics.pq import GROUPS, pq_from_segments
from pointly.pointgen.targets.build import ImageTargets

SEGMENT_COLUMNS = [
    "image_id",
    "annotation_id",
    "source_segment_id",
    "category_id",
    "isthing",
    "num_points",
    "target_pixels",
    "true_pixels",
    "precision",
    "recall",
    "iou",
]
IMAGE_COLUMNS = ["image_id", "pixels", "coverage", "ignore_share", "agreement", "segments"]
SPLITS = ("all", "things", "stuff")


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    r["counts"] = r["counts"].decode("ascii")
    return r


def match_truth(ann: Mapping, points: np.ndarray, truth: Sequence[Segment]) -> Segment | None:
    """The true segment an annotation describes: ``source_segment_id`` or the majority under its points."""
    src = ann.get("source_segment_id")
    if src is not None:
        for seg in truth:
            if seg.segment_id == int(src):
                return seg
    best, best_n = None, 0
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    for seg in truth:
        if seg.iscrowd:
            continue
        n = int(seg.mask[pts[:, 1], pts[:, 0]].sum())
        if n > best_n:
            best, best_n = seg, n
    return best


@dataclass(frozen=True)
class TruthLabels:
    """An image's targets set against its true segments, pixel by pixel."""

    truth_map: np.ndarray  # (H, W) true segment id per pixel, crowd included; 0 where VOID
    crowd: np.ndarray  # (H, W) bool: inside a crowd segment
    target_truth: np.ndarray  # (K + 1,) target owner index -> true segment id (0: none matched)
    matched: list[Segment | None]  # the true segment of each target segment, in target order

    def right(self, owner: np.ndarray) -> np.ndarray:
        """Where an owner map names the segment the pixel truly belongs to (never on VOID)."""
        return (self.target_truth[owner] == self.truth_map) & (self.truth_map > 0)


def truth_labels(
    annotations: Sequence[Mapping],
    targets: ImageTargets,
    truth: Sequence[Segment],
    *,
    image_id: Any = None,
    file: Any = None,
) -> TruthLabels:
    """Match every target segment to its true segment (:func:`match_truth`) and paint the truth as
    a label map at the targets' size; a true mask of another size is a :class:`PointlyError`."""
    H, W = targets.shape
    truth_map = np.zeros((H, W), dtype=np.int64)
    crowd = np.zeros((H, W), dtype=bool)
    for seg in truth:
        if seg.mask.shape != (H, W):
            raise PointlyError(
                f"true mask is {seg.mask.shape[1]}x{seg.mask.shape[0]}, the image is {W}x{H}",
                file=file,
                record=f"image_id {image_id}",
                fix="the points and the true masks do not belong together",
            )
        truth_map[seg.mask] = seg.segment_id
        if seg.iscrowd:
            crowd |= seg.mask
    by_ann = {int(a.get("id", -1)): a for a in annotations}
    target_truth = np.zeros(len(targets.segments) + 1, dtype=np.int64)
    matched: list[Segment | None] = []
    for k, st in enumerate(targets.segments, start=1):
        ann = by_ann.get(st.annotation_id, {})
        pts = np.asarray(ann.get("point_coords", []), dtype=np.int64).reshape(-1, 2)
        seg = match_truth(ann, pts, truth)
        matched.append(seg)
        if seg is not None:
            target_truth[k] = seg.segment_id
    return TruthLabels(truth_map, crowd, target_truth, matched)


@dataclass
class QualityReport:
    """Accumulates per-segment and per-image rows and the PQ inputs, image by image."""

    categories: Mapping[int, Any]
    segment_rows: list[dict] = field(default_factory=list)
    image_rows: list[dict] = field(default_factory=list)
    _gt_images: list[dict] = field(default_factory=list)
    _gt_anns: list[dict] = field(default_factory=list)
    _pred_anns: list[dict] = field(default_factory=list)
    truth_cache: dict | None = None  # image_id -> GT annotations (RLE), shared across reports
    _pq: dict | None = None

    def add_image(
        self,
        image: Any,
        annotations: Sequence[Mapping],
        targets: ImageTargets,
        truth: Sequence[Segment],
        *,
        file: Any = None,
    ) -> None:
        """Score one image's full-size targets against its true segments (masks at image size)."""
        self._pq = None
        H, W = targets.shape
        if (image.height, image.width) != (H, W):
            raise ValueError("quality needs full-size targets (identity transform)")
        cats = self.categories
        labels = truth_labels(annotations, targets, truth, image_id=image.id, file=file)
        for st, seg in zip(targets.segments, labels.matched):
            tp = int(st.mask.sum())
            if seg is not None:
                inter = int(np.count_nonzero(st.mask & seg.mask))
                true_px = int(seg.mask.sum())
            else:
                inter, true_px = 0, 0
            union = tp + true_px - inter
            self.segment_rows.append(
                {
                    "image_id": int(image.id),
                    "annotation_id": st.annotation_id,
                    "source_segment_id": None if seg is None else seg.segment_id,
                    "category_id": st.category_id,
                    "isthing": bool(st.isthing),
                    "num_points": st.num_points,
                    "target_pixels": tp,
                    "true_pixels": true_px,
                    "precision": inter / tp if tp else math.nan,
                    "recall": inter / true_px if true_px else math.nan,
                    "iou": inter / union if union else math.nan,
                }
            )
        covered = ~targets.ignore
        n_cov = int(covered.sum())
        agree = int(np.count_nonzero(covered & labels.right(targets.owner)))
        self.image_rows.append(
            {
                "image_id": int(image.id),
                "pixels": H * W,
                "coverage": n_cov / (H * W),
                "ignore_share": 1 - n_cov / (H * W),
                "agreement": agree / n_cov if n_cov else math.nan,
                "segments": len(targets.segments),
            }
        )
        # PQ inputs
        self._gt_images.append(
            {"id": int(image.id), "width": W, "height": H, "file_name": getattr(image, "file_name", f"{image.id}.png")}
        )
        cached = None if self.truth_cache is None else self.truth_cache.get(int(image.id))
        if cached is None:
            cached = [
                {
                    "image_id": int(image.id),
                    "category_id": seg.category_id,
                    "iscrowd": int(seg.iscrowd),
                    "segmentation": _rle(seg.mask),
                    "area": int(seg.mask.sum()),
                    "bbox": list(seg.bbox),
                }
                for seg in truth
                if seg.mask.any()
            ]
            if self.truth_cache is not None:
                self.truth_cache[int(image.id)] = cached
        self._gt_anns.extend(cached)
        for st in targets.segments:
            if st.category_id not in cats:
                raise PointlyError(
                    f"category_id {st.category_id} of annotation {st.annotation_id} is not "
                    "a category of the true annotation",
                    file=file,
                    record=f"image_id {image.id}",
                    fix="use points made from this dataset",
                )
            if not st.mask.any():
                continue
            self._pred_anns.append(
                {
                    "image_id": int(image.id),
                    "category_id": st.category_id,
                    "iscrowd": 0,
                    "segmentation": _rle(st.mask),
                    "area": int(st.mask.sum()),
                    "bbox": list(st.bbox),
                    "score": 1.0,
                }
            )

    # -- results ------------------------------------------------------------------------------
    def panoptic_quality(self) -> dict[str, dict[str, float]]:
        """``{"all"|"things"|"stuff": {"pq", "sq", "rq", "n"}}`` in [0, 1] (NaN where a split is empty)."""
        if self._pq is None:
            self._pq = self._compute_pq()
        return self._pq

    def _compute_pq(self) -> dict[str, dict[str, float]]:
        if not self._gt_images:
            return {s: {"pq": math.nan, "sq": math.nan, "rq": math.nan, "n": 0} for s in SPLITS}
        cats = [c.to_json() if hasattr(c, "to_json") else dict(c) for c in self.categories.values()]
        res = pq_from_segments(self._gt_images, self._gt_anns, self._pred_anns, cats)
        out = {}
        for split, (key, _) in zip(SPLITS, GROUPS):
            r = res[key]
            n = r["n"]
            out[split] = {m: (r[m] if n > 0 else math.nan) for m in ("pq", "sq", "rq")}
            out[split]["n"] = n
        return out

    def segments_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.segment_rows, columns=SEGMENT_COLUMNS)

    def images_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.image_rows, columns=IMAGE_COLUMNS)

    def summary(self) -> dict[str, Any]:
        """Flat summary: mean precision/recall/IoU per split, image coverage, PQ/SQ/RQ per split."""
        seg = self.segments_frame()
        img = self.images_frame()
        pq = self.panoptic_quality()
        out: dict[str, Any] = {"images": len(img), "segments": len(seg)}
        for split in SPLITS:
            part = seg if split == "all" else seg[seg["isthing"] == (split == "things")]
            sfx = {"all": "", "things": "_th", "stuff": "_st"}[split]
            out[f"precision{sfx}"] = float(part["precision"].mean()) if len(part) else math.nan
            out[f"recall{sfx}"] = float(part["recall"].mean()) if len(part) else math.nan
            out[f"iou{sfx}"] = float(part["iou"].mean()) if len(part) else math.nan
            for m in ("pq", "sq", "rq"):
                out[f"{m}{sfx}"] = pq[split][m]
        out["coverage"] = float(img["coverage"].mean()) if len(img) else math.nan
        out["ignore_share"] = float(img["ignore_share"].mean()) if len(img) else math.nan
        out["agreement"] = float(img["agreement"].mean()) if len(img) else math.nan
        return out

    def summary_frame(self) -> pd.DataFrame:
        """``summary.csv``: one row per split (all, things, stuff)."""
        seg = self.segments_frame()
        img = self.images_frame()
        pq = self.panoptic_quality()
        rows = []
        for split in SPLITS:
            part = seg if split == "all" else seg[seg["isthing"] == (split == "things")]
            rows.append(
                {
                    "split": split,
                    "segments": len(part),
                    "precision": float(part["precision"].mean()) if len(part) else math.nan,
                    "recall": float(part["recall"].mean()) if len(part) else math.nan,
                    "iou": float(part["iou"].mean()) if len(part) else math.nan,
                    "pq": pq[split]["pq"],
                    "sq": pq[split]["sq"],
                    "rq": pq[split]["rq"],
                    "categories": pq[split]["n"],
                    "images": len(img),
                    "coverage": float(img["coverage"].mean()) if len(img) else math.nan,
                    "ignore_share": float(img["ignore_share"].mean()) if len(img) else math.nan,
                    "agreement": float(img["agreement"].mean()) if len(img) else math.nan,
                }
            )
        return pd.DataFrame(rows)
