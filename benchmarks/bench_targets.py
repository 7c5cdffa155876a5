"""Benchmark of pointgen.targets: time per segment of a P20 concave target with dilation, at full
size and at stride 4, against decoding the image's panoptic PNG; plus the rasteriser choice.

Run (one core; the numbers are ratios within this one run)::

    OMP_NUM_THREADS=1 python3 benchmarks/bench_targets.py [--repeat 20] [--out benchmarks/results_targets.md]

Data: the real COCO panoptic sample (shared/data/coco_panoptic_val2017), P20 points from
pointgen.simulate. What is timed, per image, median process (CPU) time of ``--repeat`` runs:

* ``decode``: ``decode_panoptic_png`` of the image's PNG (the baseline: what reading one true
  mask costs before anything else is done);
* ``build full``: ``build_targets`` at full size (concave, ratio default, dilation 0.02);
* ``build s4``: the same at stride 4 (``PixelTransform...downsample(4)``);
* the parts of ``build full``: hulls (shapely), the claims of the shapes, buffering and the claim
  maps of the dilated shapes, the rest (point labels, owner, dilation claims, masks).

``--before REV`` adds the fair before/after comparison: ``build_targets`` as the code at git
revision REV has it (benchmarks/revision.py) against the current one, alternating calls on the
same inputs in this process, at full size and stride 4, with the default rules and the first
design's, every output asserted identical.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import astuple
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")


def best(fn, repeat: int) -> float:
    """Median CPU time of ``repeat`` calls (process time: the machine is shared, wall time is not ours),
    after 5 untimed calls: the first calls of a fresh process pay for growing the allocator's heap
    (page faults of fresh image-sized arrays), up to ~40 % more on a build (measured), which a
    process building many targets (training, ``pointly targets``) pays once."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return float(np.median(times))


def rasteriser_comparison(repeat: int) -> list[tuple[str, float, str]]:
    """µs per polygon for a 20-point concave hull spanning ~200×150 px on a 640×480 grid."""
    import cv2
    import shapely
    from matplotlib.path import Path as MPath
    from skimage.draw import polygon as sk_polygon

    from pointly.pointgen.targets.raster import full_mask, rasterize_polygon

    rng = np.random.default_rng(0)
    pts = np.stack([rng.integers(200, 400, 20), rng.integers(150, 300, 20)], 1) + 0.5
    g = shapely.concave_hull(shapely.MultiPoint(pts), ratio=0.3)
    ring = np.asarray(g.exterior.coords)[:-1]
    H, W = 480, 640
    x0, y0, x1, y1 = (int(v) for v in g.bounds)
    yy, xx = np.mgrid[y0 : y1 + 1, x0 : x1 + 1]
    shapely.prepare(g)
    mp = MPath(ring)
    ref = full_mask(g, H, W)

    def sh():
        m = np.zeros((H, W), bool)
        m[y0 : y1 + 1, x0 : x1 + 1] = shapely.intersects_xy(g, xx + 0.5, yy + 0.5)
        return m

    def mpl():
        m = np.zeros((H, W), bool)
        m[y0 : y1 + 1, x0 : x1 + 1] = mp.contains_points(np.stack([xx.ravel() + 0.5, yy.ravel() + 0.5], 1)).reshape(
            xx.shape
        )
        return m

    def sk():
        m = np.zeros((H, W), bool)
        r, c = sk_polygon(ring[:, 1] - 0.5, ring[:, 0] - 0.5, (H, W))
        m[r, c] = True
        return m

    def cv():
        m = np.zeros((H, W), np.uint8)
        cv2.fillPoly(m, [np.round(ring - 0.5).astype(np.int32)], 1)
        return m.astype(bool)

    out = []
    for name, fn in (
        ("scanline (pointgen.raster)", lambda: rasterize_polygon(ring, H, W)),
        ("shapely.intersects_xy on the bbox grid", sh),
        ("matplotlib Path.contains_points", mpl),
        ("skimage.draw.polygon", sk),
        ("cv2.fillPoly", cv),
    ):
        t = best(fn, repeat) * 1e6
        res = fn()
        m = full_mask(g, H, W) if isinstance(res, tuple) else res
        diff = int((m != ref).sum())
        out.append((name, t, "exact" if diff == 0 else f"{diff} px differ of {int(ref.sum())}"))
    return out


def assert_same_targets(a, b, what: str) -> None:
    """Every output of two ``build_targets`` results is identical (arrays by value and dtype)."""
    for name in ("owner", "ignore"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), f"{what}: {name} differs"
    assert (a.dilation_radius, a.image_id, astuple(a.transform)) == (
        b.dilation_radius,
        b.image_id,
        astuple(b.transform),
    ), what
    assert len(a.segments) == len(b.segments), f"{what}: segment count differs"
    for x, y in zip(a.segments, b.segments):
        assert x.mask.dtype == y.mask.dtype and np.array_equal(x.mask, y.mask), f"{what}: a mask differs"
        fields = ("annotation_id", "category_id", "isthing", "centre", "bbox", "source_segment_id", "num_points")
        assert all(getattr(x, f) == getattr(y, f) for f in fields), f"{what}: a segment's fields differ"


def before_after(rev: str, ds, by_image, repeat: int) -> list[tuple]:
    """Median CPU time of build_targets at ``rev`` against now, with the default (corrected) rules
    and with the first design's rules (``parts=hull, overlap=exclusive, size_correction=False``;
    left out when ``rev`` has no such options), interleaved call by call on the same inputs, every
    output asserted identical between ``rev`` and now, at full size and at stride 4."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from revision import load_revision, modules_at

    from pointly.pointgen.targets import build as new
    from pointly.pointgen.targets.pixel_transform import PixelTransform

    name = (modules_at(rev, ["targets/build"]) or modules_at(rev, ["targets"]))[0]
    old = load_revision(rev, [name])[name]
    rows = []
    from pointly.model.study.targets import RULES

    baseline = RULES["baseline"]  # the first design's rules
    try:
        old.TargetOptions(shape="concave", dilation=0.02, **baseline)
        rule_sets = [{}, baseline]
    except TypeError:
        rule_sets = [{}]
    for im in ds.images:
        anns = by_image[im.id]
        for grid, tf in (("full", None), ("s4", PixelTransform.identity(im.width, im.height).downsample(4))):
            row = [im.id, len(anns), grid]
            for rules in rule_sets:
                calls = [
                    (old, old.TargetOptions(shape="concave", dilation=0.02, **rules)),
                    (new, new.TargetOptions(shape="concave", dilation=0.02, **rules)),
                ]
                times: list[list[float]] = [[], []]
                results = [None, None]

                def build(m, opts):
                    return m.build_targets(
                        anns, ds.categories, im, options=opts, rng=np.random.default_rng(0), transform=tf
                    )

                for _ in range(5):  # untimed warm-up, as in best()
                    for m, opts in calls:
                        build(m, opts)
                for _ in range(repeat):
                    for i, (m, opts) in enumerate(calls):
                        t = time.process_time()
                        results[i] = build(m, opts)
                        times[i].append(time.process_time() - t)
                assert_same_targets(*results, f"image {im.id} {grid} rules {rules or 'default'}")
                row += [float(np.median(t)) for t in times]
            rows.append(tuple(row))
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--out", type=Path, default=None, help="write the Markdown results here")
    ap.add_argument(
        "--before",
        default=None,
        metavar="REV",
        help="also time build_targets of git revision REV against the current one",
    )
    ap.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_panoptic_val2017"
    )
    args = ap.parse_args()

    from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png
    from pointly.pointgen.base.points_format import annotations_by_image
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.build import build_targets, shapes_for
    from pointly.pointgen.targets.options import TargetOptions
    from pointly.pointgen.targets.packed_claims import claim_maps, claim_runs
    from pointly.pointgen.targets.pixel_transform import PixelTransform
    from pointly.pointgen.targets.shapes import dilate, shape_rings

    ds = PanopticDataset(args.data / "panoptic_val2017.json", args.data / "panoptic")
    doc = simulate(ds, SimulationOptions(points=20)).document
    by_image = annotations_by_image(doc)
    opts = TargetOptions(shape="concave", dilation=0.02)
    rows, claim_rows = [], []
    for im in ds.images:
        anns = by_image[im.id]
        n = len(anns)
        rng = np.random.default_rng(0)
        t_dec = best(lambda: decode_panoptic_png(ds.png_path(im.id)), args.repeat)
        t_full = best(lambda: build_targets(anns, ds.categories, im, options=opts, rng=rng), args.repeat)
        t4 = PixelTransform.identity(im.width, im.height).downsample(4)
        t_s4 = best(lambda: build_targets(anns, ds.categories, im, options=opts, rng=rng, transform=t4), args.repeat)
        t_nodil = best(
            lambda: build_targets(anns, ds.categories, im, options=TargetOptions(shape="concave")), args.repeat
        )
        t_hull = best(lambda: shapes_for(anns, opts), args.repeat)
        shapes = shapes_for(anns, opts)
        r = 0.02 * max(im.width, im.height)
        t_buf = best(lambda: [dilate(g, r) for g in shapes], args.repeat)
        rings = [shape_rings(g) for g in shapes]
        drings = [shape_rings(dilate(g, r)) for g in shapes]
        # the claims as build_targets makes them: one pass into runs for shapes + dilated shapes
        t_pack = best(lambda: claim_runs([rings, drings], im.height, im.width), args.repeat)
        t_rast1 = best(
            lambda: (
                claim_maps(rings, im.height, im.width, batched=False),
                claim_maps(drings, im.height, im.width, batched=False),
            ),
            args.repeat,
        )
        claim_rows.append((im.id, t_pack, t_rast1))
        rows.append((im.id, f"{im.width}×{im.height}", n, t_dec, t_full, t_s4, t_nodil, t_hull, t_buf, t_pack))

    ab_rows = before_after(args.before, ds, by_image, args.repeat) if args.before else []

    ms = 1e3
    lines = [
        "# pointgen.targets benchmark",
        "",
        f"`OMP_NUM_THREADS=1 python3 benchmarks/bench_targets.py --repeat {args.repeat}` "
        f"({platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, one core, median CPU time of "
        f"{args.repeat} runs). P20 points from pointgen.simulate on the COCO panoptic sample; concave hull "
        "(default ratio), dilation 0.02 of the longer side.",
        "",
        "| image | size | segments | decode PNG (ms) | build full (ms) | per segment full (ms) | "
        "build stride 4 (ms) | per segment s4 (ms) | full / decode | s4 / decode |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for iid, size, n, dec, full, s4, *_ in rows:
        lines.append(
            f"| {iid} | {size} | {n} | {dec * ms:.2f} | {full * ms:.2f} | {full * ms / n:.3f} | "
            f"{s4 * ms:.2f} | {s4 * ms / n:.3f} | {full / dec:.2f} | {s4 / dec:.2f} |"
        )
    lines += [
        "",
        "Where the full-size time goes (ms per image; the parts are timed alone, so they do not add up exactly):",
        "",
        "| image | build full | without dilation | hulls (shapely) | buffers (shapely) | "
        "claim runs of shapes + dilated shapes | rest (transforms, point labels, owner, dilation, masks) |",
        "|---|---|---|---|---|---|---|",
    ]
    for iid, _size, _n, _dec, full, _s4, nodil, hull, buf, pack in rows:
        rest = full - hull - buf - pack
        lines.append(
            f"| {iid} | {full * ms:.2f} | {nodil * ms:.2f} | {hull * ms:.2f} | {buf * ms:.2f} | "
            f"{pack * ms:.2f} | {rest * ms:.2f} |"
        )
    lines += [
        "",
        "Claims of an image's shapes and dilated shapes (ms per image): one pass into runs "
        "(`packed_claims.claim_runs`, what `build_targets` uses) against claim maps drawn shape by shape "
        "(`claim_maps(..., batched=False)`, twice):",
        "",
        "| image | batched | shape by shape | ratio |",
        "|---|---|---|---|",
    ]
    for iid, tb, t1 in claim_rows:
        lines.append(f"| {iid} | {tb * ms:.2f} | {t1 * ms:.2f} | {t1 / tb:.2f} |")
    lines += [
        "",
        "Rasterisers (µs per polygon, 20-point concave hull of ~200×150 px on 640×480; "
        "'exact' = identical to the closed pixel-centre rule):",
        "",
        "| method | µs | vs the rule |",
        "|---|---|---|",
    ]
    for name, t, exact in rasteriser_comparison(args.repeat):
        lines.append(f"| {name} | {t:.0f} | {exact} |")
    if ab_rows:
        lines += [
            "",
            f"Before/after in this process: `build_targets` of revision `{args.before}` against the current "
            "code, alternating calls, same inputs, every output asserted identical (owner, ignore, every "
            "mask, box, centre and field), with the default (corrected) rules and with the first design's "
            "rules (`parts=hull, overlap=exclusive, size_correction=False`); ms per image, median CPU time:",
            "",
            "| image | segments | grid | before | after | before per segment | after per segment | speed-up | "
            "first design: before | first design: after | speed-up |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for iid, n, grid, tb, ta, *first in ab_rows:
            extra = f"{first[0] * ms:.2f} | {first[1] * ms:.2f} | {first[0] / first[1]:.2f}" if first else "– | – | –"
            lines.append(
                f"| {iid} | {n} | {grid} | {tb * ms:.2f} | {ta * ms:.2f} | {tb * ms / n:.3f} | {ta * ms / n:.3f} | "
                f"{tb / ta:.2f} | {extra} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        from pointly.pointgen.base.files import atomic_open

        with atomic_open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
