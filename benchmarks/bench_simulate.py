"""Benchmark: point simulation throughput against bare decoding and a PointSup-style baseline.

All timings run in one process, on the same images, interleaved, best of ``--repeat`` rounds
(the minimum is the least disturbed by other load on the machine), and are reported as ratios:

* ``decode``: the bare cost of getting the masks: panoptic PNG → id map
  (``coco.decode_panoptic_png``), or for instances pycocotools RLE/polygon → full ``H × W``
  mask per annotation (``mask_utils.decode``), nothing else;
* ``baseline``: a straightforward PointSup-style simulator: the full mask of each segment
  (pycocotools decode per annotation; ``ids == id`` per panoptic segment), its boundary by the
  same shifted comparison, ``np.flatnonzero`` of the two pools, ``rng.choice``;
* ``pointly``: :func:`pointly.pointgen.points.simulate.simulate_image` (everything the simulator does
  per image, including the PNG/JSON consistency checks; the JSON document assembly is excluded
  and reported separately as ``pointly end-to-end``).

A second table puts the panoptic sets against the baseline read literally ("pycocotools decode
per annotation, then numpy"), which needs the PNG segments as RLE: once with the RLEs made
beforehand (panopticapi's detection-format conversion, untimed), once converting as it goes (PNG
decode, ``ids == id`` → pycocotools encode → decode per segment, all timed).

Goal (issue 2): pointly ≤ 2× decode and ≥ 5× faster than the baseline.

Run: ``python3 benchmarks/bench_simulate.py [--data ../shared/data] [--repeat 5] [--points 20]
[--boundary-share 0.25] [--before REV]``; it prints a markdown table (benchmarks/results_simulate.md).
``--before REV`` adds ``pointly before``: ``simulate_image`` of ``pointgen/{sampling,batched_pools,simulate}.py``
(those that exist there) at git revision REV (benchmarks/revision.py), interleaved with the others.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.points.sampling import boundary_count
from pointly.pointgen.points.simulate import SimulationOptions, simulate, simulate_image

REPO = Path(__file__).resolve().parents[1]


def _boundary(mask: np.ndarray) -> np.ndarray:
    b = np.zeros_like(mask)
    d = mask[:, 1:] != mask[:, :-1]
    b[:, 1:] |= d
    b[:, :-1] |= d
    d = mask[1:] != mask[:-1]
    b[1:] |= d
    b[:-1] |= d
    return b & mask


def _baseline_sample(mask: np.ndarray, n: int, share: float, rng: np.random.Generator) -> np.ndarray:
    bnd = _boundary(mask)
    interior = np.flatnonzero(mask & ~bnd)
    bpix = np.flatnonzero(bnd)
    kb = min(boundary_count(n, share), bpix.size)
    ki = min(n - kb, interior.size)
    pts = np.concatenate([rng.choice(interior, ki, replace=False), rng.choice(bpix, kb, replace=False)])
    return np.stack([pts % mask.shape[1], pts // mask.shape[1]], 1)


def panoptic_decode(ds: PanopticDataset) -> None:
    # the same decoder the simulator uses (uint32 ids, no int64 copy): the bare cost
    for im in ds.images:
        decode_panoptic_png(ds.png_path(im.id), dtype=np.uint32)


def panoptic_baseline(ds: PanopticDataset, opts: SimulationOptions) -> None:
    for im in ds.images:
        ids = decode_panoptic_png(ds.png_path(im.id), dtype=np.uint32)  # same fast decoder
        rng = np.random.default_rng([opts.seed, im.id])
        for s in ds.segments_info(im.id):
            if s.get("iscrowd", 0):
                continue
            _baseline_sample(ids == s["id"], opts.points, opts.boundary_share, rng)


def panoptic_rles(ds: PanopticDataset) -> dict[int, list[dict]]:
    """Every non-crowd segment as a pycocotools RLE, made once outside any timing: what
    panopticapi's ``panoptic2detection_coco_format`` converter writes for a PointSup-style reader."""
    from pycocotools import mask as mask_utils

    out = {}
    for im in ds.images:
        ids = decode_panoptic_png(ds.png_path(im.id), dtype=np.uint32)
        out[im.id] = [
            mask_utils.encode(np.asfortranarray(ids == s["id"]))
            for s in ds.segments_info(im.id)
            if not s.get("iscrowd", 0)
        ]
    return out


def panoptic_baseline_rle(ds: PanopticDataset, opts: SimulationOptions, rles: dict[int, list[dict]]) -> None:
    """The issue's baseline read literally on panoptic data: pycocotools decode per annotation (of
    the converted RLEs), then numpy; the conversion is not timed."""
    from pycocotools import mask as mask_utils

    for im in ds.images:
        rng = np.random.default_rng([opts.seed, im.id])
        for rle in rles[im.id]:
            _baseline_sample(mask_utils.decode(rle).astype(bool), opts.points, opts.boundary_share, rng)


def panoptic_baseline_convert(ds: PanopticDataset, opts: SimulationOptions) -> None:
    """The same, converting as it goes: PNG decode, then per segment ``ids == id`` → pycocotools
    encode → decode → numpy (the PNG-to-RLE conversion timed too)."""
    from pycocotools import mask as mask_utils

    for im in ds.images:
        ids = decode_panoptic_png(ds.png_path(im.id), dtype=np.uint32)
        rng = np.random.default_rng([opts.seed, im.id])
        for s in ds.segments_info(im.id):
            if s.get("iscrowd", 0):
                continue
            rle = mask_utils.encode(np.asfortranarray(ids == s["id"]))
            _baseline_sample(mask_utils.decode(rle).astype(bool), opts.points, opts.boundary_share, rng)


def literal_baselines(ds: PanopticDataset, opts: SimulationOptions, repeat: int) -> dict:
    """pointly against the two literal pycocotools baselines on a panoptic dataset, interleaved."""
    rles = panoptic_rles(ds)
    t_ours, t_rle, t_conv = [], [], []
    for _ in range(repeat):
        t_ours.append(best_of(lambda: pointly_images(ds, opts), 1))
        t_rle.append(best_of(lambda: panoptic_baseline_rle(ds, opts, rles), 1))
        t_conv.append(best_of(lambda: panoptic_baseline_convert(ds, opts), 1))
    return {"pointly": min(t_ours), "rle": min(t_rle), "convert": min(t_conv), "images": len(ds.images)}


def instances_decode(ds: InstancesDataset) -> None:
    from pycocotools import mask as mask_utils

    for im in ds.images:
        for ann in ds.annotations(im.id):
            mask_utils.decode(ds.rle(ann, im))


def instances_baseline(ds: InstancesDataset, opts: SimulationOptions) -> None:
    from pycocotools import mask as mask_utils

    for im in ds.images:
        rng = np.random.default_rng([opts.seed, im.id])
        for ann in ds.annotations(im.id):
            if ann.get("iscrowd", 0):
                continue
            mask = mask_utils.decode(ds.rle(ann, im)).astype(bool)
            _baseline_sample(mask, opts.points, opts.boundary_share, rng)


def pointly_images(ds, opts: SimulationOptions, fn=simulate_image) -> None:
    for im in ds.images:
        fn(ds, im.id, opts)


def best_of(fn, repeat: int) -> float:
    fn()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def bench(name: str, ds, decode, baseline, opts: SimulationOptions, repeat: int, before=None) -> dict:
    n_images = len(ds.images)
    n_segments = sum(1 for im in ds.images for s in ds.segments(im.id, with_masks=False) if not s.iscrowd)
    t_dec, t_base, t_ours, t_e2e, t_before = [], [], [], [], []
    for _ in range(repeat):  # interleaved so that load changes hit all alike
        t_dec.append(best_of(lambda: decode(ds), 1))
        t_base.append(best_of(lambda: baseline(ds, opts), 1))
        t_ours.append(best_of(lambda: pointly_images(ds, opts), 1))
        if before is not None:
            old_opts = before.SimulationOptions(points=opts.points, boundary_share=opts.boundary_share)
            t_before.append(best_of(lambda: pointly_images(ds, old_opts, before.simulate_image), 1))
    t_e2e.append(best_of(lambda: simulate(ds, opts), 1))
    dec, base, ours, e2e = min(t_dec), min(t_base), min(t_ours), min(t_e2e)
    return {
        "name": name,
        "images": n_images,
        "segments": n_segments,
        "decode": dec,
        "baseline": base,
        "pointly": ours,
        "e2e": e2e,
        "before": min(t_before) if t_before else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--boundary-share", type=float, default=0.25)
    ap.add_argument(
        "--before", default=None, metavar="REV", help="also time simulate_image of git revision REV (pointly before)"
    )
    args = ap.parse_args()
    before = None
    if args.before:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from revision import load_revision, modules_at

        name = modules_at(args.before, ["simulate"])[0]
        before = load_revision(args.before, [name])[name]
    data = Path(args.data)
    opts = SimulationOptions(points=args.points, boundary_share=args.boundary_share)
    rows = [
        bench(
            "coco_panoptic_val2017 (panoptic)",
            PanopticDataset(
                data / "coco_panoptic_val2017/panoptic_val2017.json", data / "coco_panoptic_val2017/panoptic"
            ),
            panoptic_decode,
            panoptic_baseline,
            opts,
            args.repeat,
            before,
        ),
        bench(
            "dsb2018_nuclei (panoptic, 126 segments)",
            PanopticDataset(data / "dsb2018_nuclei/panoptic.json", data / "dsb2018_nuclei/panoptic"),
            panoptic_decode,
            panoptic_baseline,
            opts,
            args.repeat,
            before,
        ),
        bench(
            "tiny_coco val2017 (instances)",
            InstancesDataset(data / "tiny_coco/annotations/instances_val2017.json"),
            instances_decode,
            instances_baseline,
            opts,
            args.repeat,
            before,
        ),
        bench(
            "tiny_coco train2017 (instances)",
            InstancesDataset(data / "tiny_coco/annotations/instances_train2017.json"),
            instances_decode,
            instances_baseline,
            opts,
            args.repeat,
            before,
        ),
    ]
    panoptic_sets = [
        (
            "coco_panoptic_val2017",
            data / "coco_panoptic_val2017/panoptic_val2017.json",
            data / "coco_panoptic_val2017/panoptic",
        ),
        ("dsb2018_nuclei", data / "dsb2018_nuclei/panoptic.json", data / "dsb2018_nuclei/panoptic"),
    ]
    literal = [(name, literal_baselines(PanopticDataset(j, d), opts, args.repeat)) for name, j, d in panoptic_sets]
    print(
        f"points={args.points} boundary_share={args.boundary_share} repeat={args.repeat} "
        f"python {platform.python_version()} numpy {np.__version__} cpus {os.cpu_count()}\n"
    )
    print(
        "| data | images | segments | decode ms/img | baseline ms/img | pointly ms/img | pointly µs/segment "
        "| pointly ÷ decode (goal ≤ 2) | baseline ÷ pointly (goal ≥ 5) | end-to-end ms/img "
        "| pointly before ms/img | speed-up over before |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        im, seg = r["images"], r["segments"]
        print(
            f"| {r['name']} | {im} | {seg} | {1e3 * r['decode'] / im:.2f} | {1e3 * r['baseline'] / im:.2f} "
            f"| {1e3 * r['pointly'] / im:.2f} | {1e6 * r['pointly'] / seg:.0f} "
            f"| {r['pointly'] / r['decode']:.2f} | {r['baseline'] / r['pointly']:.1f} "
            f"| {1e3 * r['e2e'] / im:.2f} | "
            + (f"{1e3 * r['before'] / im:.2f} | {r['before'] / r['pointly']:.2f} |" if r["before"] else "— | — |")
        )
    print("\nPanoptic data against the baseline read literally (pycocotools decode per annotation, then numpy):")
    print(
        "| data | pointly ms/img | RLE baseline ms/img (conversion untimed) | ÷ pointly | convert-as-you-go "
        "baseline ms/img | ÷ pointly |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in literal:
        im = r["images"]
        print(
            f"| {name} | {1e3 * r['pointly'] / im:.2f} | {1e3 * r['rle'] / im:.2f} | {r['rle'] / r['pointly']:.1f} "
            f"| {1e3 * r['convert'] / im:.2f} | {r['convert'] / r['pointly']:.1f} |"
        )


if __name__ == "__main__":
    main()
