"""The point simulator: PointSup-style point annotations drawn from full COCO masks.

For every segment of every image (a panoptic segment, or a COCO instance annotation) it draws
``points`` pixels uniformly without replacement, ``round(boundary_share × points)`` of them from
the segment's boundary pixels and the rest from its interior; the boundary definition and the
rule for segments whose pools are too small are in :mod:`pointly.pointgen.points.sampling` and
docs/formats.md. The result is a points document (:mod:`pointly.pointgen.base.points_format`).

Entry point: :func:`simulate` with a :class:`SimulationOptions` (points per segment, boundary
share, seed, filters), returning the document and a :class:`SimulationSummary`;
:func:`simulate_to_file` writes the document; :func:`simulate_image` does one image. Guide:
docs/simulate.md.

Determinism: image ``i`` gets its own generator ``np.random.default_rng([seed, image_id])``, its
selected segments draw from it in a fixed order (panoptic: the small segments together, then the
large ones in file order; instances: file order), and results are assembled in image order, so
the same seed gives the same bytes whatever the number of worker processes.

Speed: a panoptic PNG is decoded once, its boundary map computed once, and each segment's pools
are found inside its stored box only; segments with small boxes are pooled and drawn all together
(:mod:`pointly.pointgen.points.batched_pools`), large ones one by one (:func:`sampling.label_map_pools`);
a pixel count shows that nothing was missed, which also checks the PNG against ``segments_info``
(ids, areas, boxes). An instance is sampled from its RLE's run lengths (read for all kept
instances of an image in one pass, :func:`sampling.rle_counts_many`) by decoding only the columns
it touches (:func:`sampling.sample_rle_counts`), never the full ``H × W`` mask.
``benchmarks/bench_simulate.py`` measures both against bare decoding and a PointSup-style
baseline; the numbers are in benchmarks/README.md.

One module, though long: the options, the per-image drawing for the two COCO sources and the
parallel driver share the summary they fill; the pixel sampling itself is in ``sampling.py``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import file_digest, make_document, save_points
from pointly.pointgen.points import sampling
from pointly.pointgen.points.batched_pools import pool_label_map

log = logging.getLogger(__name__)

Dataset = PanopticDataset | InstancesDataset


@dataclass(frozen=True)
class SimulationOptions:
    """What to simulate; validated by :meth:`check` (user mistakes → :class:`PointlyError`)."""

    points: int = 20
    boundary_share: float = 0.0
    seed: int = 0
    things_only: bool = False
    stuff_only: bool = False
    include_crowd: bool = False
    #: the image's outermost rows and columns count as boundary (sampling module docstring)
    edge_is_boundary: bool = False

    def __post_init__(self) -> None:
        # a whole-number share (0 or 1) is stored as the float it stands for
        if isinstance(self.boundary_share, (int, float)):
            object.__setattr__(self, "boundary_share", float(self.boundary_share))

    def check(self) -> None:
        if isinstance(self.points, bool) or not isinstance(self.points, (int, np.integer)) or self.points < 1:
            raise PointlyError(
                f"points per segment must be an integer >= 1, got {self.points!r}",
                record="-n/--points",
                fix="pass e.g. -n 20",
            )
        share = self.boundary_share
        if not isinstance(share, (int, float)) or not math.isfinite(share) or not 0.0 <= share <= 1.0:
            raise PointlyError(
                f"boundary share must lie in [0, 1], got {share!r}",
                record="--boundary-share",
                fix="pass a fraction such as 0.25",
            )
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise PointlyError(f"seed must be an integer >= 0, got {self.seed!r}", record="--seed")
        if not isinstance(self.edge_is_boundary, bool):
            raise PointlyError(f"edge_is_boundary must be true or false, got {self.edge_is_boundary!r}")
        if self.things_only and self.stuff_only:
            raise PointlyError("--things-only and --stuff-only exclude each other", fix="pass at most one of them")


@dataclass
class SimulationSummary:
    """Counts reported at the end of a run (and stored in ``info.pointly.summary``)."""

    images: int = 0
    segments: int = 0  # annotations written
    points: int = 0
    boundary_points: int = 0
    skipped_crowd: int = 0
    skipped_by_filter: int = 0  # --things-only / --stuff-only
    short_segments: int = 0  # fewer pixels than points: all pixels taken
    empty_segments: int = 0  # no pixel at all (e.g. a degenerate polygon): no annotation

    def add(self, other: SimulationSummary) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def lines(self) -> list[str]:
        out = [
            f"images: {self.images}",
            f"segments: {self.segments}",
            f"points: {self.points} ({self.boundary_points} on boundaries)",
            f"skipped crowd segments: {self.skipped_crowd}",
        ]
        if self.skipped_by_filter:
            out.append(f"skipped by --things-only/--stuff-only: {self.skipped_by_filter}")
        out.append(
            f"short segments (fewer pixels than points, all pixels taken): {self.short_segments}"
            + (" WARNING" if self.short_segments else "")
        )
        if self.empty_segments:
            out.append(f"empty segments (no pixel, no annotation written): {self.empty_segments} WARNING")
        return out


@dataclass
class SimulationResult:
    """The points document and the run's summary."""

    document: dict
    summary: SimulationSummary = field(default_factory=SimulationSummary)


def image_rng(seed: int, image_id: int) -> np.random.Generator:
    """The generator of one image: ``default_rng([seed, image_id])`` (negative ids via 2^64 wrap)."""
    return np.random.default_rng([int(seed), int(image_id) & 0xFFFFFFFFFFFFFFFF])


def _selected(isthing: bool, iscrowd: bool, opts: SimulationOptions, stats: SimulationSummary) -> bool:
    if iscrowd and not opts.include_crowd:
        stats.skipped_crowd += 1
        return False
    if (opts.things_only and not isthing) or (opts.stuff_only and isthing):
        stats.skipped_by_filter += 1
        return False
    return True


def _annotation(
    image_id: int,
    category_id: int,
    iscrowd: bool,
    bbox: Iterable[float],
    area: Any,
    sp: sampling.SampledPoints,
    source_id: int,
    stats: SimulationSummary,
) -> dict:
    stats.segments += 1
    stats.points += len(sp.kinds)
    stats.boundary_points += sp.boundary_points
    stats.short_segments += int(sp.short)
    return {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "iscrowd": int(iscrowd),
        "bbox": [float(v) for v in bbox],
        "area": area,
        "point_coords": sp.coords_list(),
        "point_labels": [1] * len(sp.kinds),
        "point_kinds": sp.kinds,
        "source_segment_id": int(source_id),
    }


def _check_areas_and_boxes(ds: PanopticDataset, infos: list[dict], pools: Any, record: str) -> None:
    """Stored ``area`` = the PNG's pixel count and stored ``bbox`` within 1 px of the PNG's box,
    for every segment that stores them; the first disagreement is one PointlyError."""
    nan4 = [math.nan] * 4
    try:
        areas = np.array([s.get("area", math.nan) for s in infos], dtype=np.float64)
        stored = np.array([s.get("bbox", nan4) for s in infos], dtype=np.float64).reshape(len(infos), 4)
    except (TypeError, ValueError):
        areas = stored = None  # a malformed value: compare segment by segment below
    got = pools.bboxes()
    if areas is not None:
        bad = (np.round(areas) != pools.pixels) & ~np.isnan(areas)
        bad |= (np.abs(stored - got) > 1.0).any(axis=1)
        suspects = np.flatnonzero(bad).tolist()
    else:
        suspects = range(len(infos))
    for i in suspects:
        s, npix, box = infos[i], int(pools.pixels[i]), got[i].tolist()
        if "area" in s and int(round(s["area"])) != npix:
            raise PointlyError(
                f"segment {s['id']}: area {s['area']} but the PNG has {npix} pixels",
                file=ds.json_path,
                record=record,
                fix="recompute the areas from the PNGs",
            )
        if "bbox" in s and any(abs(a - b) > 1.0 for a, b in zip(s["bbox"], box)):
            raise PointlyError(
                f"segment {s['id']}: bbox {s['bbox']} but the PNG gives {box}",
                file=ds.json_path,
                record=record,
                fix="recompute the boxes from the PNGs",
            )


def _panoptic_image(
    ds: PanopticDataset, image_id: int, opts: SimulationOptions
) -> tuple[list[dict], SimulationSummary]:
    stats = SimulationSummary(images=1)
    info = ds.image(image_id)
    infos = ds.segments_info(image_id)
    try:
        path = ds.png_path(image_id)
    except KeyError:  # no annotation record: nothing to sample (and no PNG to check)
        return [], stats
    ids = decode_panoptic_png(path, dtype=np.uint32)
    record = f"image_id {image_id}"
    if ids.shape != (info.height, info.width):
        raise PointlyError(
            f"PNG is {ids.shape[1]}x{ids.shape[0]} but the image record says {info.width}x{info.height}",
            file=path,
            record=record,
            fix="the PNG and the JSON do not belong together",
        )
    try:
        pools = pool_label_map(
            ids,
            [int(s["id"]) for s in infos],
            [s.get("bbox") for s in infos],
            boundary=sampling.boundary_map(ids, image_edge=True) if opts.edge_is_boundary else None,
        )
    except sampling.LabelMapMismatch as exc:
        raise PointlyError(
            str(exc), file=path, record=record, fix="the PNG and segments_info do not belong together"
        ) from None
    if ds.check:  # the same checks as PanopticDataset.label_map, from the pools (vectorised)
        _check_areas_and_boxes(ds, infos, pools, record)
    chosen = []
    for i, s in enumerate(infos):
        cat = ds.categories[int(s["category_id"])]
        if _selected(cat.isthing, bool(s.get("iscrowd", 0)), opts, stats):
            chosen.append(i)
    rng = image_rng(opts.seed, image_id)
    samples = pools.sample(chosen, points=opts.points, boundary_share=opts.boundary_share, rng=rng)
    anns = []
    for i, sp in zip(chosen, samples):
        s = infos[i]
        bbox = s["bbox"] if "bbox" in s else pools.bbox(i)
        area = s["area"] if "area" in s else int(pools.pixels[i])
        anns.append(
            _annotation(image_id, int(s["category_id"]), bool(s.get("iscrowd", 0)), bbox, area, sp, int(s["id"]), stats)
        )
    return anns, stats


def _instances_image(
    ds: InstancesDataset, image_id: int, opts: SimulationOptions
) -> tuple[list[dict], SimulationSummary]:
    stats = SimulationSummary(images=1)
    info = ds.image(image_id)
    rng = image_rng(opts.seed, image_id)
    kept = []
    for ann in ds.annotations(image_id):
        cat = ds.categories[int(ann["category_id"])]
        iscrowd = bool(ann.get("iscrowd", 0))
        if _selected(cat.isthing, iscrowd, opts, stats):
            kept.append((ann, cat, iscrowd, ds.rle(ann, info)))
    try:  # the run lengths of all kept instances in one pass
        all_counts: list = sampling.rle_counts_many([k[3] for k in kept])
    except ValueError:  # one is broken: decode them one by one below, which names it
        all_counts = [None] * len(kept)
    anns = []
    for (ann, cat, iscrowd, rle), counts in zip(kept, all_counts):
        try:
            if counts is None:
                counts = sampling.rle_counts(rle)
            sp = sampling.sample_rle_counts(
                counts,
                info.height,
                info.width,
                points=opts.points,
                boundary_share=opts.boundary_share,
                rng=rng,
                image_edge=opts.edge_is_boundary,
            )
        except ValueError as exc:
            raise PointlyError(
                f"bad segmentation: {exc}",
                file=ds.json_path,
                record=f"annotation id {ann.get('id')} (image_id {image_id})",
                fix="fix or drop this annotation",
            ) from None
        if sp.pixels == 0:
            stats.empty_segments += 1
            log.warning("annotation %s of image %s covers no pixel; skipped", ann.get("id"), image_id)
            continue
        if "bbox" in ann:
            bbox = ann["bbox"]
        else:  # files without boxes: the box of the mask, from the RLE
            from pycocotools import mask as mask_utils

            bbox = mask_utils.toBbox(rle).tolist()
        area = ann["area"] if "area" in ann else sp.pixels
        anns.append(_annotation(image_id, cat.id, iscrowd, bbox, area, sp, int(ann["id"]), stats))
    return anns, stats


def simulate_image(dataset: Dataset, image_id: int, options: SimulationOptions) -> tuple[list[dict], SimulationSummary]:
    """The annotations (without ``id``) and counts of one image."""
    if isinstance(dataset, PanopticDataset):
        return _panoptic_image(dataset, image_id, options)
    return _instances_image(dataset, image_id, options)


# ---------------------------------------------------------------- worker processes
_WORKER: dict[str, Any] = {}


def _worker_init(dataset: Dataset, options: SimulationOptions) -> None:
    _WORKER["dataset"], _WORKER["options"] = dataset, options


def _worker_run(image_id: int) -> tuple[list[dict], SimulationSummary]:
    return simulate_image(_WORKER["dataset"], image_id, _WORKER["options"])


def simulate(
    dataset: Dataset,
    options: SimulationOptions,
    *,
    workers: int = 1,
    progress: bool = False,
) -> SimulationResult:
    """Simulate points for every image of ``dataset``: the points document and its summary.

    ``options`` say what to draw (checked here: user mistakes raise :class:`PointlyError`);
    ``workers`` processes share the images (the bytes do not depend on it); ``progress`` shows a
    bar on stderr.
    """
    opts = options
    opts.check()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise PointlyError(f"workers must be an integer >= 1, got {workers!r}", record="--workers")
    from tqdm import tqdm

    image_ids = [im.id for im in dataset.images]
    bar = tqdm(
        total=len(image_ids), disable=not progress, file=sys.stderr, unit="img", desc="simulating points", leave=False
    )
    results: list[tuple[list[dict], SimulationSummary]] = []
    try:
        if workers == 1 or len(image_ids) < 2:
            for image_id in image_ids:
                results.append(simulate_image(dataset, image_id, opts))
                bar.update()
        else:
            chunk = max(1, min(16, len(image_ids) // (4 * workers)))
            with multiprocessing.get_context().Pool(
                min(workers, len(image_ids)), _worker_init, (dataset, opts)
            ) as pool:
                for res in pool.imap(_worker_run, image_ids, chunksize=chunk):
                    results.append(res)
                    bar.update()
    finally:
        bar.close()

    summary = SimulationSummary()
    annotations = []
    for anns, stats in results:  # image order, so ids do not depend on the workers
        summary.add(stats)
        for a in anns:
            annotations.append({"id": len(annotations) + 1, **a})
    if summary.short_segments:
        log.warning(
            "%d segments have fewer pixels than %d points; all their pixels were taken",
            summary.short_segments,
            opts.points,
        )
    source = dataset.json_path
    provenance = {
        "made_by": "simulator",
        "points": int(opts.points),
        "boundary_share": float(opts.boundary_share),
        "seed": int(opts.seed),
        "things_only": bool(opts.things_only),
        "stuff_only": bool(opts.stuff_only),
        "include_crowd": bool(opts.include_crowd),
        **({"edge_is_boundary": True} if opts.edge_is_boundary else {}),  # files without it: False
        "source_kind": dataset.kind,
        "source": source.name,
        "source_digest": file_digest(source),
        "summary": asdict(summary),
    }
    doc = make_document(
        _image_records(dataset),
        [c.to_json() for c in dataset.categories.values()],
        annotations,
        provenance,
        licenses=_licenses(dataset),
    )
    return SimulationResult(doc, summary)


#: COCO image keys carried from the source into the points file (besides id, file name and size)
_IMAGE_EXTRAS = ("license", "coco_url", "flickr_url", "date_captured")


def _image_records(dataset: Dataset) -> list[dict]:
    """The points file's image records: id, file name, size, and the source's licence and URLs,
    so that a points file keeps the attribution its images came with."""
    raw = {r.get("id"): r for r in dataset.raw.get("images", []) if isinstance(r, dict)}
    out = []
    for im in dataset.images:
        rec = im.to_json()
        rec.update({k: raw[im.id][k] for k in _IMAGE_EXTRAS if k in raw.get(im.id, {})})
        out.append(rec)
    return out


def _licenses(dataset: Dataset) -> list | None:
    """COCO's top-level ``licenses`` of the source, when it has a list of them."""
    value = dataset.raw.get("licenses")
    return value if isinstance(value, list) else None


def simulate_to_file(
    output: str | Path,
    dataset: Dataset,
    options: SimulationOptions,
    *,
    workers: int = 1,
    progress: bool = False,
) -> SimulationSummary:
    """Run :func:`simulate` and write the document atomically (nothing is written on an error)."""
    output = Path(output)
    if output.is_dir():
        raise PointlyError("the output path is a folder", file=output, fix="pass a file name such as points.json")
    result = simulate(dataset, options, workers=workers, progress=progress)
    save_points(output, result.document)
    return result.summary
