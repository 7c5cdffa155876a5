"""Statistics and a sample figure of a synthetic (or any COCO panoptic) dataset folder.

:func:`dataset_statistics` reads ``<root>/<split>/panoptic.json`` and the PNGs through
:class:`pointly.pointgen.base.coco.PanopticDataset` (which checks that PNG ids, areas and boxes agree
with the JSON) and, where the generator's ``shapes.json`` is present, its occlusion flags. The
numbers in docs/synthetic-dataset.md come from :func:`statistics_markdown` of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from scipy.ndimage import binary_dilation

from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import save_figure_atomic

_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def panoptic_sets(root: Path) -> list[tuple[str, Path, Path]]:
    """The COCO panoptic sets at ``root`` as ``(name, json, png folder)``, in either layout:
    ``<split>/panoptic.json`` + ``<split>/panoptic/`` (``pointly data synth``) or COCO's own
    ``panoptic_<split>.json`` + ``panoptic_<split>/`` (its annotations folder); ``root`` may also
    be one panoptic JSON, with its PNG folder beside it under the same name."""
    if root.is_file() and root.suffix == ".json":
        return [(root.stem.removeprefix("panoptic_"), root, root.with_suffix(""))]
    sets = []
    if root.is_dir():
        for p in sorted(root.iterdir()):
            if (p / "panoptic.json").is_file():
                sets.append((p.name, p / "panoptic.json", p / "panoptic"))
            elif p.is_file() and p.name.startswith("panoptic_") and p.suffix == ".json" and p.with_suffix("").is_dir():
                sets.append((p.stem.removeprefix("panoptic_"), p, p.with_suffix("")))
    if not sets:
        raise PointlyError(
            "no panoptic set found (neither <split>/panoptic.json nor panoptic_<split>.json with its PNG folder)",
            file=root,
            fix="pass the folder written by `pointly data synth --out DIR` or COCO's annotations folder",
        )
    return sets


def dataset_statistics(path: str | Path) -> dict:
    """Per split: image count and size, segments per image (things / stuff), thing and stuff
    area distributions, per-class counts, the share of thing instances that touch another thing
    (4-neighbour adjacency of visible pixels), touch one of the same class, are partly occluded
    (from ``shapes.json``), and the mean solidity (pixel area over the area of the convex hull
    of the pixel squares) per thing class."""
    root = Path(path)
    out: dict = {"root": str(root), "splits": {}}
    for split, json_path, png_dir in panoptic_sets(root):
        ds = PanopticDataset(json_path, png_dir)
        names = {c.id: c.name for c in ds.categories.values()}
        things_per, stuff_per, thing_area, stuff_area = [], [], [], []
        touching = same_class_touching = 0
        class_count = {c.name: 0 for c in ds.categories.values()}
        solidity: dict[str, list[float]] = {c.name: [] for c in ds.categories.values() if c.isthing}
        sizes = set()
        for im in ds:
            sizes.add((im.width, im.height))
            ids = ds.label_map(im.id)  # decoded and checked once; masks come from it
            segs = ds.segments(im.id, with_masks=False)
            cat_of = {s.segment_id: s.category_id for s in segs}
            thing_ids = {s.segment_id for s in segs if s.isthing}
            things_per.append(len(thing_ids))
            stuff_per.append(len(segs) - len(thing_ids))
            for s in segs:
                class_count[names[s.category_id]] += 1
                if not s.isthing:
                    stuff_area.append(s.area / ids.size)
                    continue
                thing_area.append(s.area)
                # work in the segment's box grown by one pixel
                x, y, w, h = (int(v) for v in s.bbox)
                y0, x0 = max(0, y - 1), max(0, x - 1)
                crop = ids[y0 : y + h + 1, x0 : x + w + 1]
                mask = crop == s.segment_id
                ring = binary_dilation(mask, _CROSS) & ~mask
                neigh = set(np.unique(crop[ring]).tolist()) & thing_ids
                touching += bool(neigh)
                same_class_touching += any(cat_of[n] == s.category_id for n in neigh)
                solidity[names[s.category_id]].append(_solidity(mask))
        occluded = None
        shapes_path = json_path.parent / "shapes.json"
        if shapes_path.is_file():
            recs = [t for im in json.loads(shapes_path.read_text())["images"] for t in im["things"]]
            occluded = float(np.mean([t["occluded"] for t in recs])) if recs else 0.0
        n_things = len(thing_area)
        ta = np.asarray(thing_area, float)
        out["splits"][split] = {
            "images": len(ds),
            "image_sizes": sorted(f"{w}x{h}" for w, h in sizes),
            "things": n_things,
            "stuff_segments": len(stuff_area),
            "things_per_image": _summary(things_per),
            "stuff_per_image": _summary(stuff_per),
            "thing_area_px": _summary(ta, percentiles=True),
            "stuff_area_share": _summary(stuff_area),
            "touching_share": touching / n_things if n_things else 0.0,
            "same_class_touching_share": same_class_touching / n_things if n_things else 0.0,
            "occluded_share": occluded,
            "class_counts": class_count,
            "thing_solidity": {k: float(np.mean(v)) if v else None for k, v in solidity.items()},
        }
    return out


def _solidity(mask: np.ndarray) -> float:
    """Pixel area over the area of the convex hull of the pixel squares (cv2, exact)."""
    ys, xs = np.nonzero(mask)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    hull = cv2.convexHull(corners.astype(np.float32))
    return float(mask.sum() / cv2.contourArea(hull))


def _summary(values, *, percentiles: bool = False) -> dict:
    v = np.asarray(values, float)
    if v.size == 0:
        return {"mean": None, "min": None, "max": None}
    out = {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max())}
    if percentiles:
        for p in (10, 50, 90):
            out[f"p{p}"] = float(np.percentile(v, p))
    return out


def statistics_markdown(stats: dict) -> str:
    """The statistics as Markdown tables (one column per split)."""
    splits = list(stats["splits"])
    S = stats["splits"]

    def row(label: str, fn) -> str:
        return f"| {label} | " + " | ".join(fn(S[s]) for s in splits) + " |"

    f1 = lambda x: "–" if x is None else f"{x:.1f}"  # noqa: E731
    pct = lambda x: "–" if x is None else f"{100 * x:.1f}%"  # noqa: E731
    lines = [
        "| | " + " | ".join(splits) + " |",
        "|---|" + "---|" * len(splits),
        row("images", lambda d: str(d["images"])),
        row("image size", lambda d: ", ".join(d["image_sizes"])),
        row("thing instances", lambda d: str(d["things"])),
        row("stuff segments", lambda d: str(d["stuff_segments"])),
        row(
            "things per image: mean (min–max)",
            lambda d: (
                f"{f1(d['things_per_image']['mean'])} "
                f"({d['things_per_image']['min']:.0f}–{d['things_per_image']['max']:.0f})"
            ),
        ),
        row(
            "stuff per image: mean (min–max)",
            lambda d: (
                f"{f1(d['stuff_per_image']['mean'])} "
                f"({d['stuff_per_image']['min']:.0f}–{d['stuff_per_image']['max']:.0f})"
            ),
        ),
        row(
            "thing area px: p10 / median / p90",
            lambda d: "/".join(f"{d['thing_area_px'][k]:.0f}" for k in ("p10", "p50", "p90")),
        ),
        row("thing area px: min / max", lambda d: f"{d['thing_area_px']['min']:.0f} / {d['thing_area_px']['max']:.0f}"),
        row("stuff segment share of image: mean", lambda d: pct(d["stuff_area_share"]["mean"])),
        row("things touching another thing", lambda d: pct(d["touching_share"])),
        row("things touching one of the same class", lambda d: pct(d["same_class_touching_share"])),
        row("things partly occluded", lambda d: pct(d["occluded_share"])),
        "",
    ]
    names = list(dict.fromkeys(n for s in splits for n in S[s]["class_counts"]))  # union, in order
    lines += [
        "| class | " + " | ".join(f"{s} segments" for s in splits) + " | solidity (first split with it) |",
        "|---|" + "---|" * (len(splits) + 1),
    ]
    for n in names:
        first = next(s for s in splits if n in S[s]["class_counts"])
        solidity = S[first]["thing_solidity"]
        sol = solidity.get(n)
        counts = " | ".join(str(S[s]["class_counts"].get(n, "–")) for s in splits)
        lines.append(
            f"| {n} | {counts} | {'stuff' if n not in solidity else f1(sol) if sol is None else f'{sol:.2f}'} |"
        )
    return "\n".join(lines) + "\n"


def sample_figure(path: str | Path, out_png: str | Path, *, split: str = "train", n: int = 6) -> Path:
    """Save a grid: the first ``n`` images of ``split`` above their panoptic colouring (category
    colour, each instance a shade of it, and segment borders in black)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    root = Path(path)
    ds = PanopticDataset(root / split / "panoptic.json", root / split / "panoptic")
    fig, axes = plt.subplots(2, n, figsize=(2 * n, 4.2))
    rng = np.random.default_rng(0)
    for k, im in enumerate(ds.images[:n]):
        rgb = np.asarray(Image.open(root / split / "images" / im.file_name).convert("RGB"))
        ids = ds.label_map(im.id)
        colour = np.zeros(rgb.shape, np.float64)
        for s in ds.segments(im.id):
            base = np.asarray(ds.categories[s.category_id].color or (128, 128, 128), float)
            if s.isthing:
                base = np.clip(base * rng.uniform(0.7, 1.15), 0, 255)
            colour[s.mask] = base
        border = np.zeros(ids.shape, bool)
        border[:-1] |= ids[:-1] != ids[1:]
        border[:, :-1] |= ids[:, :-1] != ids[:, 1:]
        colour[border] = 0
        axes[0, k].imshow(rgb)
        axes[1, k].imshow(colour.astype(np.uint8))
        axes[0, k].set_title(f"{split} {im.file_name}", fontsize=8)
        for a in axes[:, k]:
            a.set_axis_off()
    fig.tight_layout()
    out_png = Path(out_png)
    return save_figure_atomic(fig, out_png, dpi=100)
