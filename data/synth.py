"""The synthetic panoptic dataset: small, deterministic, and hard enough for point supervision.

``generate(out_dir)`` writes a COCO panoptic dataset of ``size × size`` RGB images:

* 4 stuff classes (sky, grass, water, wall): textured regions laid out as a Voronoi diagram of
  a few seeds whose distance fields are perturbed by smooth noise, so borders are irregular; a
  stuff *segment* is all pixels of one stuff class in an image, as in COCO panoptic;
* 6 thing classes (disc, rectangle, triangle: convex; ring, star, C-shape: not convex) of varied
  size, colour and texture, placed at random, a share of them deliberately next to an earlier
  one so that instances touch or overlap. Later instances occlude earlier ones; an instance whose
  visible part is too small (fewer than ``MIN_THING_AREA`` pixels at 128 px, or under
  ``MIN_VISIBLE_FRACTION`` of its in-image area) is dropped and not drawn at all, so the image
  shows exactly what the labels say;
* a stuff class whose visible area ends up under ``MIN_STUFF_AREA`` pixels is merged into its
  nearest other stuff region before drawing, so there is no VOID.

Class identity is learnable from appearance (each class has its own colour palette and, for
stuff, texture); instance identity needs geometry (same-class instances share a palette).

Layout of ``out_dir``::

    categories.json                    the 10 categories (= data/categories/synthetic.json)
    {train,val}/images/000001.png      RGB images
    {train,val}/panoptic/000001.png    segment ids as R + 256·G + 256²·B (0 would be VOID)
    {train,val}/panoptic.json          COCO panoptic: images, annotations[segments_info], categories
    {train,val}/instances.json         COCO instances of the things (compressed RLE)
    {train,val}/shapes.json            generator metadata per thing: shape parameters, analytic,
                                       in-image and visible areas (for tests and statistics)
    .complete                          written last: the parameters; marks a finished dataset

Every image has its own ``numpy.random.Generator`` seeded from ``(seed, split, index)``, so the
same parameters give byte-identical files, and image *i* of a split does not depend on how many
images the splits hold.

One module, though long: the layout, the drawing and the COCO writing of one deterministic
generator, whose byte-identical output depends on their order of random draws.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.ndimage import distance_transform_edt

from pointly.data.shapes import SHAPES, Shape, random_shape
from pointly.data.textures import smooth_noise, stuff_texture, thing_texture
from pointly.pointgen.base.categories import load_categories
from pointly.pointgen.base.coco import encode_panoptic_png, mask_bbox
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import atomic_open, write_json_atomic

log = logging.getLogger(__name__)

#: bump when the generator's output changes, so cached datasets are regenerated
GENERATOR_VERSION = 1
SPLITS = ("train", "val")
MARKER = ".complete"

# sizes at 128 px; areas scale with (size / 128)², lengths with size / 128
MIN_THING_AREA = 30
MIN_VISIBLE_FRACTION = 0.25
MIN_STUFF_AREA = 64
THING_RADIUS = (0.06, 0.21)  # outer radius as a fraction of the image size
THINGS_PER_IMAGE = (1, 7)  # [low, high): 1..6 things attempted per image
NEAR_SHARE = 0.4  # share of things placed next to an earlier one
STUFF_PER_IMAGE = (2, 4)  # [low, high): 2 or 3 stuff classes per image


@dataclass
class SynthImage:
    """One generated image: RGB pixels, the segment-id map, segments_info and thing metadata."""

    rgb: np.ndarray  # H × W × 3 uint8
    ids: np.ndarray  # H × W int64 segment ids
    segments: list[dict]  # COCO panoptic segments_info
    things: list[dict]  # per kept thing: segment_id, shape, areas, flags


def _categories() -> tuple[list[dict], dict[str, int], list[str], list[str]]:
    cats = load_categories("synthetic")
    by_name = {c["name"]: c["id"] for c in cats}
    things = [c["name"] for c in cats if c["isthing"]]
    stuff = [c["name"] for c in cats if not c["isthing"]]
    if tuple(things) != SHAPES:
        raise RuntimeError(f"synthetic.json thing classes {things} do not match shapes {SHAPES}")
    return cats, by_name, things, stuff


def _stuff_layout(rng: np.random.Generator, size: int, stuff: list[str]) -> np.ndarray:
    """H × W array of stuff class indices: a noisy Voronoi diagram of 2–5 seeds."""
    k = int(rng.integers(*STUFF_PER_IMAGE))
    classes = rng.choice(len(stuff), size=k, replace=False)
    n_seeds = int(rng.integers(k, k + 3))
    owner = np.concatenate([classes, rng.choice(classes, size=n_seeds - k)])
    seeds = rng.uniform(0, size, size=(n_seeds, 2))
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    amp = rng.uniform(0.08, 0.2) * size
    dist = np.stack([np.hypot(xs - sx, ys - sy) + amp * smooth_noise(rng, (size, size), size / 12) for sx, sy in seeds])
    return owner[np.argmin(dist, axis=0)].astype(np.int64)


def _place_things(rng: np.random.Generator, size: int) -> list[Shape]:
    n = int(rng.integers(*THINGS_PER_IMAGE))
    shapes: list[Shape] = []
    occupied = np.zeros((size, size), bool)
    for _ in range(n):
        kind = SHAPES[int(rng.integers(len(SHAPES)))]
        r = float(rng.uniform(*THING_RADIUS) * size)
        if shapes and rng.random() < NEAR_SHARE:
            # next to an earlier instance: centre distance 0.6–1.05 × the sum of radii
            j = shapes[int(rng.integers(len(shapes)))]
            th = rng.uniform(0, 2 * np.pi)
            d = (j.size + r) * rng.uniform(0.6, 1.05)
            cx = float(np.clip(j.cx + d * np.cos(th), 0.3 * r, size - 0.3 * r))
            cy = float(np.clip(j.cy + d * np.sin(th), 0.3 * r, size - 0.3 * r))
            shape = random_shape(rng, kind, cx, cy, r)
        else:
            # somewhere free if possible (few tries), partly outside the image allowed
            for _try in range(8):
                cx, cy = rng.uniform(0.4 * r, size - 0.4 * r, size=2)
                shape = random_shape(rng, kind, cx, cy, r)
                m = shape.mask(size, size)
                if (m & occupied).sum() <= 0.02 * max(m.sum(), 1):
                    break
        shapes.append(shape)
        occupied |= shape.mask(size, size)
    return shapes


def generate_image(rng: np.random.Generator, size: int = 128) -> SynthImage:
    """Generate one image and its panoptic labels from ``rng``."""
    cats, by_name, thing_names, stuff_names = _categories()
    scale2 = (size / 128.0) ** 2
    stuff_idx = _stuff_layout(rng, size, stuff_names)
    shapes = _place_things(rng, size)
    masks = [s.mask(size, size) for s in shapes]

    # occlusion in painter's order; drop too-small instances and recompute until stable
    keep = [bool(m.any()) for m in masks]
    while True:
        visible = []
        cover = np.zeros((size, size), bool)
        for i in range(len(shapes) - 1, -1, -1):
            vis = masks[i] & ~cover if keep[i] else np.zeros_like(cover)
            if keep[i]:
                cover |= masks[i]
            visible.append(vis)
        visible.reverse()
        drop = [
            i
            for i in range(len(shapes))
            if keep[i]
            and (visible[i].sum() < MIN_THING_AREA * scale2 or visible[i].sum() < MIN_VISIBLE_FRACTION * masks[i].sum())
        ]
        if not drop:
            break
        keep[drop[0]] = False  # drop one at a time: each drop can only uncover the others
    thing_cover = np.zeros((size, size), bool)
    for i, k in enumerate(keep):
        if k:
            thing_cover |= visible[i]

    # merge tiny visible stuff regions into the nearest other stuff region
    while True:
        present, counts = np.unique(stuff_idx[~thing_cover], return_counts=True)
        small = [int(c) for c, n in zip(present, counts) if n < MIN_STUFF_AREA * scale2]
        others = set(np.unique(stuff_idx).tolist()) - set(small[:1])
        if not small or not others:
            break
        c = small[0]
        _, (iy, ix) = distance_transform_edt(stuff_idx == c, return_indices=True)
        stuff_idx = stuff_idx[iy, ix]
    stuff_classes = [int(c) for c in np.unique(stuff_idx[~thing_cover])]

    # draw: stuff textures, then things in painter's order
    img = np.zeros((size, size, 3))
    for c in np.unique(stuff_idx):
        tex = stuff_texture(rng, stuff_names[int(c)], size, size)
        sel = stuff_idx == c
        img[sel] = tex[sel]
    ids = np.zeros((size, size), np.int64)
    segments, things = [], []
    for c in stuff_classes:
        cid = by_name[stuff_names[c]]
        ids[(stuff_idx == c) & ~thing_cover] = cid * 1000
    per_class: dict[int, int] = {}
    for i, shape in enumerate(shapes):
        if not keep[i]:
            continue
        tex = thing_texture(rng, shape.kind, size, size, shape.cx, shape.cy, shape.size)
        img[masks[i]] = tex[masks[i]]  # later instances overwrite: occlusion
        cid = by_name[shape.kind]
        per_class[cid] = per_class.get(cid, 0) + 1
        sid = cid * 1000 + per_class[cid]
        ids[visible[i]] = sid
        things.append(
            {
                "segment_id": sid,
                "category_id": cid,
                "order": i,
                "shape": shape.to_json(),
                "in_image_area": int(masks[i].sum()),
                "visible_area": int(visible[i].sum()),
                "cropped": bool(_cropped(shape, size)),
                "occluded": bool(visible[i].sum() < masks[i].sum()),
            }
        )
    img = img + rng.normal(0, 0.015, img.shape)  # sensor noise
    rgb = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)

    for t in things:
        m = ids == t["segment_id"]
        segments.append(_segment_info(t["segment_id"], t["category_id"], m))
    for c in stuff_classes:
        cid = by_name[stuff_names[c]]
        segments.append(_segment_info(cid * 1000, cid, ids == cid * 1000))
    return SynthImage(rgb, ids, segments, things)


def _cropped(shape: Shape, size: int) -> bool:
    return (
        shape.cx - shape.size < 0
        or shape.cy - shape.size < 0
        or shape.cx + shape.size > size
        or shape.cy + shape.size > size
    )


def _segment_info(sid: int, cid: int, mask: np.ndarray) -> dict:
    return {
        "id": int(sid),
        "category_id": int(cid),
        "iscrowd": 0,
        "bbox": [int(v) for v in mask_bbox(mask)],
        "area": int(mask.sum()),
    }


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write(path: Path, data: bytes) -> None:
    # per-file fsync is skipped for speed; the marker file written last (with fsync) says
    # whether the whole dataset is complete
    with atomic_open(path, "wb", fsync=False) as fh:
        fh.write(data)


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of image ``index`` (0-based) of ``split``: independent of the split sizes."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLITS.index(split), int(index)]))


def params_dict(*, train: int, val: int, size: int, seed: int) -> dict[str, Any]:
    return {
        "generator_version": GENERATOR_VERSION,
        "train": int(train),
        "val": int(val),
        "size": int(size),
        "seed": int(seed),
    }


def _check_params(train: int, val: int, size: int, seed: int) -> None:
    for name, v, lo in (("train", train, 0), ("val", val, 0), ("size", size, 32), ("seed", seed, 0)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
            raise PointlyError(
                f"--{name} must be an integer >= {lo}, got {v!r}", fix=f"pass --{name} with a value of at least {lo}"
            )
    if train + val == 0:
        raise PointlyError("nothing to generate: --train and --val are both 0", fix="ask for some images")


def generate(
    out_dir: str | Path, *, train: int = 200, val: int = 50, size: int = 128, seed: int = 0, progress: bool = True
) -> Path:
    """Write the synthetic dataset into ``out_dir`` (see the module docstring); return its path.

    Existing files of an earlier run are overwritten, and its extra ``NNNNNN.png`` files beyond
    the new image count are removed (nothing else is touched); the marker file ``.complete`` is
    removed first and written last, so an interrupted run never looks complete.
    """
    from tqdm import tqdm

    _check_params(train, val, size, seed)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PointlyError("output path exists and is not a folder", file=out, fix="choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).unlink(missing_ok=True)
    cats, _, _, _ = _categories()
    thing_ids = {c["id"] for c in cats if c["isthing"]}
    write_json_atomic(out / "categories.json", cats)
    params = params_dict(train=train, val=val, size=size, seed=seed)
    bar = tqdm(total=train + val, desc="synthetic dataset", unit="img", disable=not progress)
    for split, n in (("train", train), ("val", val)):
        root = out / split
        (root / "images").mkdir(parents=True, exist_ok=True)
        (root / "panoptic").mkdir(parents=True, exist_ok=True)
        images, annotations, instances, shapes = [], [], [], []
        ann_id = 1
        for i in range(n):
            image_id = i + 1
            name = f"{image_id:06d}.png"
            im = generate_image(image_rng(seed, split, i), size)
            _write(root / "images" / name, _png_bytes(im.rgb))
            _write(root / "panoptic" / name, _png_bytes(encode_panoptic_png(im.ids)))
            images.append({"id": image_id, "file_name": name, "width": size, "height": size})
            annotations.append({"image_id": image_id, "file_name": name, "segments_info": im.segments})
            shapes.append({"image_id": image_id, "things": im.things})
            for seg in im.segments:
                if seg["category_id"] in thing_ids:
                    instances.append(
                        {
                            "id": ann_id,
                            "image_id": image_id,
                            "category_id": seg["category_id"],
                            "iscrowd": 0,
                            "bbox": [float(v) for v in seg["bbox"]],
                            "area": float(seg["area"]),
                            "segmentation": _rle(im.ids == seg["id"]),
                            "panoptic_segment_id": seg["id"],
                        }
                    )
                    ann_id += 1
            bar.update(1)
        info = {"description": f"pointly synthetic panoptic dataset ({split})", "pointly_synth": params}
        write_json_atomic(
            root / "panoptic.json", {"info": info, "images": images, "annotations": annotations, "categories": cats}
        )
        write_json_atomic(
            root / "instances.json", {"info": info, "images": images, "annotations": instances, "categories": cats}
        )
        write_json_atomic(root / "shapes.json", {"info": info, "images": shapes})
        _remove_stale(root, n)
    bar.close()
    write_json_atomic(out / MARKER, params)
    return out


def _remove_stale(root: Path, n: int) -> None:
    """Delete PNGs an earlier, larger run left behind (only our own ``NNNNNN.png`` names)."""
    for sub in ("images", "panoptic"):
        for p in (root / sub).glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            if int(p.stem) > n:
                p.unlink()


def _rle(mask: np.ndarray) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def is_complete(path: str | Path, params: dict | None = None) -> bool:
    """True when ``path`` holds a finished dataset (with these parameters, if given)."""
    marker = Path(path) / MARKER
    if not marker.is_file():
        return False
    if params is None:
        return True
    try:
        return json.loads(marker.read_text()) == params
    except (OSError, json.JSONDecodeError):
        return False


def cache_root() -> Path:
    """Where :func:`ensure_dataset` keeps datasets: ``$POINTLY_CACHE`` or ``~/.cache/pointly``."""
    env = os.environ.get("POINTLY_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "pointly"


def ensure_dataset(
    root: str | Path | None = None,
    *,
    train: int = 200,
    val: int = 50,
    size: int = 128,
    seed: int = 0,
    progress: bool = False,
) -> Path:
    """Return a complete synthetic dataset with these parameters, generating it only if needed.

    It lives in ``<root>/synthetic-<hash of the parameters>`` (``root`` defaults to
    :func:`cache_root`). A missing or incomplete one is generated into a temporary sibling
    folder and renamed into place, so concurrent callers (parallel test workers) never see a
    half-written dataset.
    """
    _check_params(train, val, size, seed)
    params = params_dict(train=train, val=val, size=size, seed=seed)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    base = Path(root) if root is not None else cache_root()
    target = base / f"synthetic-{digest}"
    if is_complete(target, params):
        return target
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".synthetic-{digest}.", dir=base))
    try:
        generate(tmp, train=train, val=val, size=size, seed=seed, progress=progress)
        if target.exists() and not is_complete(target, params):
            shutil.rmtree(target, ignore_errors=True)  # a stale or broken copy
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_complete(target, params):  # someone else won the race, or a real failure
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("synthetic dataset ready at %s", target)
    return target
