"""What ``pointly targets`` does: build every image's targets, draw previews, score them.

:func:`run_targets` reads a points JSON, builds the full-size targets of every image with the
given :class:`~pointly.pointgen.targets.options.TargetOptions`, writes preview PNGs for the chosen
images and, when the true masks are given (COCO panoptic JSON + PNG folder, or COCO instances
JSON), the target-quality report (:mod:`pointly.pointgen.targets.quality`):

``DIR/previews/<image_id>.png``  image, shapes, ignore in grey, points, centres
``DIR/quality.csv``              one row per segment: image_id, annotation_id, source_segment_id,
                                 category_id, isthing, num_points, target_pixels, true_pixels,
                                 precision, recall, iou
``DIR/images.csv``               one row per image: coverage, ignore share, agreement
``DIR/summary.csv``              one row per split (all, things, stuff): means and PQ/SQ/RQ
``DIR/summary.md``               the summary as Markdown (also printed)
``DIR/config.json``              the resolved options and inputs

Every file is written atomically.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointly.pointgen.base.coco import PanopticDataset, open_dataset
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import atomic_open, staged_folder, write_bytes_atomic, write_json_atomic
from pointly.pointgen.base.points_format import annotations_by_image, load_points
from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.preview import png_bytes, render_targets
from pointly.pointgen.targets.quality import QualityReport

log = logging.getLogger(__name__)


def parse_preview_selection(text: str | None, image_ids: Sequence[int]) -> list[int]:
    """``--preview-images``: a count ``N`` (the first N images), ``all``, ``none``, or ids ``1,5,9``."""
    if text is None:
        return list(image_ids[:4])
    t = str(text).strip().lower()
    if t in ("none", "0", ""):
        return []
    if t == "all":
        return list(image_ids)
    try:
        if "," not in t:
            n = int(t)
            if n < 0:
                raise ValueError
            return list(image_ids[:n]) if n < 10_000 or n not in image_ids else [n]
        ids = [int(p) for p in t.split(",") if p.strip()]
    except ValueError:
        raise PointlyError(
            f"cannot read --preview-images {text!r}",
            fix="give a count (4), 'all', 'none', or image ids separated by commas",
        ) from None
    missing = [i for i in ids if i not in set(image_ids)]
    if missing:
        raise PointlyError(
            f"--preview-images: image id {missing[0]} is not in the points file",
            fix="use ids of the points file's images",
        )
    return ids


def load_image(images_dir: Path, file_name: str) -> np.ndarray:
    """The RGB array of ``images_dir / file_name``; a missing or damaged file is one line."""
    from PIL import Image, UnidentifiedImageError

    path = images_dir / file_name
    if not path.is_file():
        raise PointlyError("image not found", file=path, fix="check --images and the file_name in the points JSON")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        raise PointlyError("unreadable image", file=path, fix="the file is damaged") from None


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, float_format="%.6g")


def summary_markdown(summary: pd.DataFrame) -> str:
    """The summary table as Markdown (percentages for rates, one row per split)."""
    cols = ["split", "segments", "precision", "recall", "iou", "pq", "sq", "rq", "coverage", "agreement"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in summary.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if c in ("split",):
                cells.append(str(v))
            elif c == "segments":
                cells.append(str(int(v)))
            else:
                cells.append("–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n\n(rates in %; PQ of the targets read as a panoptic prediction, ignore = VOID)\n"


@dataclass
class TargetsRun:
    """What :func:`run_targets` produced (paths and, with true masks, the tables)."""

    previews: list[Path]
    summary: pd.DataFrame | None
    segments: pd.DataFrame | None
    images: pd.DataFrame | None
    markdown: str


def run_targets(
    points_path: str | Path,
    out_dir: str | Path,
    *,
    options: TargetOptions,
    images_dir: str | Path | None = None,
    gt_json: str | Path | None = None,
    gt_dir: str | Path | None = None,
    gt_instances: str | Path | None = None,
    preview: str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> TargetsRun:
    """Run ``pointly targets`` (see the module docstring). Bad input raises PointlyError."""
    points_path, out_dir = Path(points_path), Path(out_dir)
    if (gt_json is None) != (gt_dir is None):
        raise PointlyError("--gt-json and --gt-dir go together", fix="give both, or --gt-instances")
    if gt_instances is not None and gt_json is not None:
        raise PointlyError("give --gt-json/--gt-dir or --gt-instances, not both")
    if out_dir.exists() and not out_dir.is_dir():
        raise PointlyError("the output path is a file", file=out_dir, fix="pass a folder for --out")
    doc = load_points(points_path)
    images = {im["id"]: im for im in doc["images"]}
    categories = {c["id"]: c for c in doc["categories"]}
    by_image = annotations_by_image(doc)
    image_ids = [im["id"] for im in doc["images"]]
    chosen = set(parse_preview_selection(preview, image_ids))
    images_dir = Path(images_dir) if images_dir is not None else None
    if images_dir is not None and not images_dir.is_dir():
        raise PointlyError("image folder not found", file=images_dir, fix="check --images")

    truth: PanopticDataset | InstancesDataset | None = None
    report = None
    if gt_json is not None or gt_instances is not None:
        truth = open_dataset(panoptic_json=gt_json, panoptic_dir=gt_dir, instances_json=gt_instances)
        truth_ids = {im.id for im in truth.images}
        for iid in image_ids:
            if iid not in truth_ids:
                raise PointlyError(
                    f"image_id {iid} of the points file is not in the true annotation",
                    file=gt_json or gt_instances,
                    fix="use the annotation the points were made from",
                )
            ti = truth.image(iid)
            if (ti.width, ti.height) != (images[iid]["width"], images[iid]["height"]):
                raise PointlyError(
                    f"image_id {iid} is {images[iid]['width']}x{images[iid]['height']} in the "
                    f"points file but {ti.width}x{ti.height} in the true annotation",
                    file=points_path,
                    fix="the points and the true masks do not belong together",
                )
        for cid in categories:
            if cid not in truth.categories:
                raise PointlyError(
                    f"category_id {cid} is not a category of the true annotation",
                    file=points_path,
                    fix="use the annotation the points were made from",
                )
        report = QualityReport(truth.categories)

    rng = np.random.default_rng(seed)
    previews: list[Path] = []
    iterator: Any = image_ids
    if progress:
        from tqdm import tqdm

        iterator = tqdm(image_ids, desc="targets", unit="image", leave=False)
    config = {
        "points": str(points_path),
        "options": options.to_dict(),
        "seed": seed,
        "images": None if images_dir is None else str(images_dir),
        "gt_json": None if gt_json is None else str(gt_json),
        "gt_dir": None if gt_dir is None else str(gt_dir),
        "gt_instances": None if gt_instances is None else str(gt_instances),
    }
    seg = img = summ = None
    with staged_folder(out_dir) as stage:  # all outputs or none: a bad PNG at the last image leaves nothing
        for iid in iterator:
            anns = by_image.get(iid, [])
            im = images[iid]
            picture = None
            if images_dir is not None and (iid in chosen or options.shape == "watershed"):
                picture = load_image(images_dir, im["file_name"])
            targets = build_targets(anns, categories, im, options=options, rng=rng, file=points_path, image=picture)
            if iid in chosen:
                rgb = render_targets(targets, anns, categories, picture)
                rel = Path("previews") / f"{iid}.png"
                write_bytes_atomic(stage / rel, png_bytes(rgb))
                previews.append(out_dir / rel)
            if report is not None:
                report.add_image(truth.image(iid), anns, targets, truth.segments(iid), file=points_path)
        write_json_atomic(stage / "config.json", config, indent=2)
        if report is None:
            md = f"{len(image_ids)} images, {len(previews)} previews (no true masks given: no quality report)\n"
        else:
            seg, img, summ = report.segments_frame(), report.images_frame(), report.summary_frame()
            md = summary_markdown(summ)
            _write_csv(stage / "quality.csv", seg)
            _write_csv(stage / "images.csv", img)
            _write_csv(stage / "summary.csv", summ)
            with atomic_open(stage / "summary.md", "w", encoding="utf-8") as fh:
                fh.write(md)
    return TargetsRun(previews, summ, seg, img, md)
