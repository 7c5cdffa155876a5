"""The annotation-cost table (the paper's Table 1) for a points file, modelled and measured.

**Modelled cost.** Under a :class:`CostModel` a segment annotated with *n* points costs
``n × seconds_per_point`` (the paper: 0.9 s per random point, so P10 costs 9 s and P20 18 s per
segment). Its full-mask baseline costs ``seconds_per_thing_mask`` (79 s, a COCO polygon) per
thing and ``seconds_per_stuff_mask`` (45 s, a super-pixel stuff region) per stuff segment; the
saving is ``full-mask seconds / point seconds`` (×) and ``1 − point / full-mask`` (%).
Every point of an annotation counts, negatives (label 0) included: each is a click.

**Full-mask segments.** Without the source masks, the baseline counts the annotations of the
points file themselves (the same segments). With a source dataset (COCO panoptic or
instances) it counts the source's non-crowd segments of the images in the points file, as
thing or stuff by the source's categories, so segments that received no points (skipped,
``--things-only``) still count against full masks; the table then also says how many.

**Measured cost** (annotator files, which carry ``point_times``: seconds since the image was
opened, one per point). For each image, take the times of all its timed points in ascending
order ``t1 <= t2 <= ... <= tn`` and form the gaps ``g1 = t1 - 0`` (from the opening of the
image) and ``gi = ti - t(i-1)``. A gap ``gi <= idle_cutoff`` is active time and is charged to
the segment that point ``i`` belongs to; a longer gap is idle (a break, not work) and is left
out entirely: it adds nothing, neither the cut-off nor the gap. The image's active time is the
sum of its charged gaps; a segment's is the sum of the gaps charged to it. Points without
times (annotations lacking ``point_times``) are not measured. ``idle_cutoff = inf`` counts
every gap, so an image's active time is then simply its last point time.
The annotator's live numbers (``pointly.annotator.timing``) use the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pointly.pointgen.base.errors import PointlyError

ROWS = ("thing", "stuff", "all")
DEFAULT_IDLE_CUTOFF = 60.0


@dataclass(frozen=True)
class CostModel:
    """Seconds per point and per full mask; the defaults are the paper's (Table 1)."""

    seconds_per_point: float = 0.9
    seconds_per_thing_mask: float = 79.0
    seconds_per_stuff_mask: float = 45.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise PointlyError(
                    f"{name} must be a finite number >= 0, got {value!r}",
                    fix=f"pass --{name.replace('_', '-')} with a non-negative number",
                )

    def mask_seconds(self, isthing: bool) -> float:
        return self.seconds_per_thing_mask if isthing else self.seconds_per_stuff_mask


def _thing_ids(doc: Mapping) -> set[int]:
    return {int(c["id"]) for c in doc.get("categories", []) if int(c.get("isthing", 1)) == 1}


def _check_cutoff(idle_cutoff: float) -> float:
    try:
        cut = float(idle_cutoff)
    except (TypeError, ValueError):
        cut = float("nan")
    if math.isnan(cut) or cut < 0:
        raise PointlyError(
            f"the idle cut-off must be a number >= 0 seconds, got {idle_cutoff!r}",
            fix="pass --idle-cutoff SECONDS (e.g. 60; 'inf' counts every gap)",
        )
    return cut


def modelled_seconds(doc: Mapping, model: CostModel = CostModel()) -> float:
    """Seconds to place every point of ``doc`` under ``model``: points × seconds per point."""
    return sum(len(a["point_coords"]) for a in doc["annotations"]) * model.seconds_per_point


def measured_seconds(doc: Mapping, idle_cutoff: float = DEFAULT_IDLE_CUTOFF) -> dict | None:
    """Active annotation time from ``point_times`` (the rule of the module docstring).

    Returns ``None`` when no annotation has ``point_times``. Otherwise a dict with
    ``images``, ``segments``, ``points`` (timed ones), ``active_seconds``, ``idle_gaps`` (count of
    gaps over the cut-off), ``idle_seconds`` (their total, left out), ``seconds_per_image``,
    ``seconds_per_segment``, ``seconds_per_point``, ``per_image`` ({image_id: seconds}),
    ``per_annotation`` ({annotation id: seconds}) and ``thing``/``stuff`` sub-dicts with
    ``segments``, ``points``, ``active_seconds``.
    """
    cut = _check_cutoff(idle_cutoff)
    things = _thing_ids(doc)
    by_image: dict[int, list[tuple[float, int]]] = {}
    timed: dict[int, Mapping] = {}
    for ann in doc["annotations"]:
        times = ann.get("point_times")
        if not times:
            continue
        timed[ann["id"]] = ann
        by_image.setdefault(ann["image_id"], []).extend((float(t), ann["id"]) for t in times)
    if not timed:
        return None
    per_image: dict[int, float] = {}
    per_ann: dict[int, float] = {aid: 0.0 for aid in timed}
    idle_gaps, idle_seconds = 0, 0.0
    for image_id, events in by_image.items():
        events.sort()
        prev, total = 0.0, 0.0
        for t, aid in events:
            gap = t - prev
            prev = t
            if gap <= cut:
                total += gap
                per_ann[aid] += gap
            else:
                idle_gaps += 1
                idle_seconds += gap
        per_image[image_id] = total
    n_points = sum(len(a["point_times"]) for a in timed.values())
    active = sum(per_image.values())
    out: dict[str, Any] = {
        "idle_cutoff": cut,
        "images": len(per_image),
        "segments": len(timed),
        "points": n_points,
        "active_seconds": active,
        "idle_gaps": idle_gaps,
        "idle_seconds": idle_seconds,
        "seconds_per_image": active / len(per_image),
        "seconds_per_segment": active / len(timed),
        "seconds_per_point": active / n_points,
        "per_image": per_image,
        "per_annotation": per_ann,
    }
    for row, want in (("thing", True), ("stuff", False)):
        anns = [a for a in timed.values() if (a["category_id"] in things) == want]
        out[row] = {
            "segments": len(anns),
            "points": sum(len(a["point_times"]) for a in anns),
            "active_seconds": sum(per_ann[a["id"]] for a in anns),
        }
    return out


def source_segment_counts(
    dataset: Any, image_ids: list[int], doc: Mapping | None = None, *, file: str | Path | None = None
) -> dict[str, Any]:
    """Non-crowd thing and stuff segments of ``image_ids`` in a source dataset
    (:class:`pointly.pointgen.base.coco.PanopticDataset` or ``InstancesDataset``); reads only JSON.

    Returns ``{"thing": n, "stuff": m, "without_points": k}``. When ``doc`` is given, every
    annotation's ``source_segment_id`` must exist in its image of the source, else the points
    file does not belong to this source (:class:`PointlyError`); ``without_points`` counts the
    non-crowd source segments that no annotation names (None without ``doc``, or when some
    annotation lacks ``source_segment_id``).
    """
    known = {im.id for im in dataset.images}
    counts: dict[str, Any] = {"thing": 0, "stuff": 0, "without_points": None}
    ids_by_image: dict[int, set[int]] = {}
    plain_by_image: dict[int, set[int]] = {}
    for image_id in image_ids:
        if image_id not in known:
            raise PointlyError(
                f"image id {image_id} of the points file is not in the source dataset",
                file=file,
                fix="pass the masks the points were made from",
            )
        recs = dataset.segments_info(image_id) if dataset.kind == "panoptic" else dataset.annotations(image_id)
        ids_by_image[image_id] = {int(r["id"]) for r in recs}
        plain_by_image[image_id] = {int(r["id"]) for r in recs if not r.get("iscrowd", 0)}
        for r in recs:
            if r.get("iscrowd", 0):
                continue
            isthing = dataset.categories[int(r["category_id"])].isthing
            counts["thing" if isthing else "stuff"] += 1
    if doc is not None:
        for ann in doc["annotations"]:
            sid = ann.get("source_segment_id")
            if sid is not None and sid not in ids_by_image.get(ann["image_id"], set()):
                raise PointlyError(
                    f"source_segment_id {sid} is not a segment of image {ann['image_id']} in the source",
                    file=file,
                    record=f"annotation id {ann['id']}",
                    fix="pass the masks the points were made from",
                )
        if all("source_segment_id" in a for a in doc["annotations"]):
            named = {(a["image_id"], a["source_segment_id"]) for a in doc["annotations"]}
            counts["without_points"] = sum(
                1 for im, ids in plain_by_image.items() for sid in ids if (im, sid) not in named
            )
    return counts


def cost_table(
    doc: Mapping,
    model: CostModel = CostModel(),
    idle_cutoff: float = DEFAULT_IDLE_CUTOFF,
    full_mask_segments: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """The cost table: one row per ``thing``, ``stuff``, ``all``.

    Columns: ``segments``, ``points``, ``points_per_segment``, ``seconds_per_segment`` (modelled,
    points per segment × seconds per point), ``total_seconds``, ``full_mask_segments``,
    ``full_mask_seconds_per_segment``, ``full_mask_seconds``, ``saving_x`` (full-mask / point
    seconds), ``saving_pct`` (100 × (1 − point / full-mask seconds)); and, when ``point_times``
    exist, ``measured_segments``, ``measured_points``, ``measured_seconds``,
    ``measured_seconds_per_segment``, ``measured_seconds_per_point`` and, in the ``all`` row,
    ``measured_seconds_per_image``. Undefined ratios (no segments) are NaN.

    ``full_mask_segments`` ({"thing": n, "stuff": m}, e.g. from :func:`source_segment_counts`)
    replaces the default baseline, which counts the annotations of ``doc``.
    """
    things = _thing_ids(doc)
    rows: dict[str, dict[str, float]] = {}
    for row, want in (("thing", True), ("stuff", False)):
        anns = [a for a in doc["annotations"] if (a["category_id"] in things) == want]
        full_n = len(anns) if full_mask_segments is None else int(full_mask_segments[row])
        rows[row] = {
            "segments": len(anns),
            "points": sum(len(a["point_coords"]) for a in anns),
            "full_mask_segments": full_n,
            "full_mask_seconds": full_n * model.mask_seconds(want),
        }
    rows["all"] = {k: rows["thing"][k] + rows["stuff"][k] for k in rows["thing"]}
    measured = measured_seconds(doc, idle_cutoff)
    table = []
    for row in ROWS:
        r = rows[row]
        seg, pts, full_n, full_s = r["segments"], r["points"], r["full_mask_segments"], r["full_mask_seconds"]
        total = pts * model.seconds_per_point
        rec = {
            "segments": seg,
            "points": pts,
            "points_per_segment": _div(pts, seg),
            "seconds_per_segment": _div(total, seg),
            "total_seconds": total,
            "full_mask_segments": full_n,
            "full_mask_seconds_per_segment": _div(full_s, full_n),
            "full_mask_seconds": full_s,
            "saving_x": _div(full_s, total),
            "saving_pct": 100.0 * (1.0 - total / full_s) if full_s > 0 else math.nan,
        }
        if measured is not None:
            m = measured if row == "all" else measured[row]
            rec.update(
                {
                    "measured_segments": m["segments"],
                    "measured_points": m["points"],
                    "measured_seconds": m["active_seconds"],
                    "measured_seconds_per_segment": _div(m["active_seconds"], m["segments"]),
                    "measured_seconds_per_point": _div(m["active_seconds"], m["points"]),
                    "measured_seconds_per_image": measured["seconds_per_image"] if row == "all" else math.nan,
                }
            )
        table.append(rec)
    df = pd.DataFrame(table, index=pd.Index(ROWS, name="segments of"))
    for col in ("segments", "points", "full_mask_segments", "measured_segments", "measured_points"):
        if col in df:
            df[col] = df[col].astype(int)
    df.attrs["model"] = asdict(model)
    df.attrs["idle_cutoff"] = _check_cutoff(idle_cutoff)
    if full_mask_segments is not None and full_mask_segments.get("without_points") is not None:
        df.attrs["segments_without_points"] = int(full_mask_segments["without_points"])
    if measured is not None:
        df.attrs["measured"] = {k: v for k, v in measured.items() if k not in ("per_image", "per_annotation")}
    return df


def _div(a: float, b: float) -> float:
    return a / b if b else math.nan


#: column -> (Markdown header, format)
_COLUMNS = {
    "segments": ("segments", "{:d}"),
    "points": ("points", "{:d}"),
    "points_per_segment": ("points / segment", "{:.1f}"),
    "seconds_per_segment": ("s / segment", "{:.1f}"),
    "total_seconds": ("total s", "{:.0f}"),
    "full_mask_segments": ("full-mask segments", "{:d}"),
    "full_mask_seconds_per_segment": ("full-mask s / segment", "{:.1f}"),
    "full_mask_seconds": ("full-mask s", "{:.0f}"),
    "saving_x": ("saving ×", "{:.1f}×"),
    "saving_pct": ("saving %", "{:.1f}%"),
    "measured_segments": ("measured segments", "{:d}"),
    "measured_points": ("measured points", "{:d}"),
    "measured_seconds": ("measured s", "{:.1f}"),
    "measured_seconds_per_segment": ("measured s / segment", "{:.1f}"),
    "measured_seconds_per_point": ("measured s / point", "{:.2f}"),
    "measured_seconds_per_image": ("measured s / image", "{:.1f}"),
}


def to_markdown(df: pd.DataFrame) -> str:
    """The table as Markdown, with a line stating the cost model (and the idle cut-off)."""
    cols = [c for c in _COLUMNS if c in df.columns]
    lines = ["| | " + " | ".join(_COLUMNS[c][0] for c in cols) + " |", "|---|" + "---:|" * len(cols)]
    for row in df.index:
        cells = []
        for c in cols:
            v = df.at[row, c]
            if isinstance(v, float) and math.isnan(v):
                cells.append("–")
            else:
                fmt = _COLUMNS[c][1]
                cells.append(fmt.format(int(v)) if "d}" in fmt else fmt.format(float(v)))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    m = df.attrs.get("model", asdict(CostModel()))
    note = (
        f"\nCost model: {m['seconds_per_point']:g} s per point; full masks {m['seconds_per_thing_mask']:g} s "
        f"per thing, {m['seconds_per_stuff_mask']:g} s per stuff segment."
    )
    if "measured" in df.attrs:
        meas = df.attrs["measured"]
        note += (
            f" Measured: active time from point_times over {meas['images']} images, gaps over "
            f"{meas['idle_cutoff']:g} s left out ({meas['idle_gaps']} gaps, {meas['idle_seconds']:.0f} s)."
        )
    extra = df.attrs.get("segments_without_points")
    if extra:
        note += f" The source has {extra} non-crowd segments in these images without points."
    return "\n".join(lines) + "\n" + note + "\n"


def save_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as ``.csv`` (full precision) or ``.md`` (as printed), atomically."""
    from pointly.pointgen.base.files import atomic_open

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".md"):
        raise PointlyError(
            f"unknown table format {path.suffix or '(none)'!r}", file=path, fix="name the output FILE.csv or FILE.md"
        )
    text = df.to_csv(float_format="%.6g", lineterminator="\n") if suffix == ".csv" else to_markdown(df)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path
