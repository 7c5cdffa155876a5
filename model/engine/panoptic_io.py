"""Writing panoptic predictions as COCO panoptic files (PNG + JSON) and overlay pictures.

Output layout of :class:`PanopticWriter` (``out_dir``)::

    predictions.json        COCO panoptic: images, annotations (segments_info), categories
    panoptic/<stem>.png     segment ids as R + 256·G + 256²·B (0 = VOID)
    overlays/<stem>.jpg     the image blended with segment colours (optional)

Each ``segments_info`` record has ``id``, ``category_id`` (dataset id), ``isthing`` (0/1),
``iscrowd`` (0), ``area`` (pixels), ``bbox`` ``[x, y, w, h]`` (tight, from the pixels) and
``score`` (the model's confidence). Area and box are recomputed from the label map, so the JSON
always agrees with the PNG (panopticapi refuses files where they disagree), and segments that
lost every pixel are dropped. Every file is written atomically (temporary name, then rename).

One module, though long: reading the images, writing predictions as COCO panoptic files and
overlays, and the prediction loop that feeds the writer share the segment records and the image
ids; splitting the loop from its writer is the next step if it grows.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from pointly.pointgen.base.coco import encode_panoptic_png, mask_bbox
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_bytes_atomic, write_json_atomic
from pointly.pointgen.base.limits import max_pixels

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

__all__ = [
    "PanopticWriter",
    "SegmentRecord",
    "read_rgb",
    "list_images",
    "overlay",
    "segment_records",
    "png_bytes",
    "IMAGE_SUFFIXES",
]


@dataclass(frozen=True)
class SegmentRecord:
    """One predicted segment as written to ``segments_info``."""

    id: int
    category_id: int
    isthing: bool
    area: int
    bbox: tuple[float, float, float, float]
    score: float

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "category_id": self.category_id,
            "isthing": int(self.isthing),
            "iscrowd": 0,
            "area": self.area,
            "bbox": [int(v) for v in self.bbox],
            "score": round(float(self.score), 6),
        }


# ----------------------------------------------------------------------------- images in
def read_rgb(path: str | Path, *, exif: bool = True) -> np.ndarray:
    """An image file as ``H × W × 3`` uint8 RGB, EXIF orientation applied (as detectron2 reads)
    unless ``exif=False``."""
    path = Path(path)
    try:
        with Image.open(path) as im:
            if exif:
                im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise PointlyError("image not found", file=path, fix="check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise PointlyError(
            f"unreadable image ({exc.__class__.__name__})", file=path, fix="the file is damaged or not an image"
        ) from None


def list_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (non-recursive, sorted by name) into image paths.

    Raises when nothing is found at all; a folder without images among others that have some
    is reported as a warning."""
    out: list[Path] = []
    empty: list[Path] = []
    inputs = [Path(item) for item in inputs]
    for p in inputs:
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                empty.append(p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise PointlyError("no such file or folder", file=p, fix="pass image files or a folder of images")
    suffixes = ", ".join(IMAGE_SUFFIXES)
    if not out:
        raise PointlyError(
            f"no images ({suffixes}) found",
            file=", ".join(map(str, inputs)),
            fix="pass image files or folders holding images",
        )
    for p in empty:
        log.warning("%s: no images (%s) in this folder", p, suffixes)
    return out


def coco_image_ids(
    images_json: str | Path, paths: Sequence[Path]
) -> tuple[dict[Path, Any], dict[Any, tuple[int, int]]]:
    """Each input's COCO image id, by file name, from the ``images`` of a COCO JSON (panoptic or
    instances; :func:`pointly.pointgen.interop.common.load_reference`), and the ids' (height,
    width). An input the JSON does not name, or two inputs of one record, is refused: predictions
    must be scorable against that JSON's ground truth."""
    from pointly.pointgen.interop.common import load_reference, resolve_image

    ref = load_reference(images_json)
    ids: dict[Path, Any] = {}
    sizes: dict[Any, tuple[int, int]] = {}
    for p in paths:
        rec = resolve_image(p.name, None, None, ref, file=images_json, record=str(p))
        if rec["id"] in sizes:
            raise PointlyError(f"two inputs are called {p.name}", file=p, fix="pass each image once")
        ids[p] = rec["id"]
        sizes[rec["id"]] = (int(rec["height"]), int(rec["width"]))
    return ids, sizes


def image_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be predicted (missing, unreadable, beyond the pixel budget), or None.

    Reads the header only, so that a command can sort its inputs before writing anything."""
    try:
        with Image.open(path) as im:
            width, height = im.size
    except FileNotFoundError:
        return "image not found"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        return f"unreadable image ({exc.__class__.__name__})"
    if width * height > max_pixels():
        return f"{width}x{height} exceeds the {max_pixels() / 1e6:g} MP pixel budget"
    return None


def readable_images(paths: Iterable[Path]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``paths`` split into readable ones and ``(path, reason)`` for the others; raises when none
    is readable (one line naming the first and its reason)."""
    ok: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        reason = image_problem(p)
        if reason is None:
            ok.append(Path(p))
        else:
            bad.append((Path(p), reason))
    if not ok:
        raise PointlyError(
            f"none of the {len(bad)} images can be read ({bad[0][1]})",
            file=bad[0][0],
            fix="pass images that open (JPEG, PNG, ...)",
        )
    return ok, bad


# ----------------------------------------------------------------------------- segments
def _get(seg: Any, name: str, default: Any = None) -> Any:
    if isinstance(seg, Mapping):
        return seg.get(name, default)
    return getattr(seg, name, default)


def segment_records(
    label_map: np.ndarray, segments: Sequence[Any], categories: Mapping[int, Mapping | Any]
) -> list[SegmentRecord]:
    """Check a label map against its segments and return the records to write.

    ``segments`` are dicts or objects with ``id``, ``category_id`` (dataset id) and optionally
    ``score`` (default 1.0) and ``isthing`` (default: the category's). Every non-zero id in the
    map must be listed; listed segments without pixels are dropped (with a debug log).
    """
    label_map = np.asarray(label_map)
    if label_map.ndim != 2:
        raise ValueError(f"label map must be H×W, got shape {label_map.shape}")
    ids, counts = np.unique(label_map, return_counts=True)
    area = {int(i): int(c) for i, c in zip(ids, counts) if i != 0}
    listed = {int(_get(s, "id")) for s in segments}
    unlisted = sorted(set(area) - listed)
    if unlisted:
        raise ValueError(f"segment ids {unlisted[:5]} are in the label map but not in segments")
    if ids.size and (ids.min() < 0 or ids.max() >= 256**3):
        raise ValueError("segment ids must be in 0..16777215 to fit a panoptic PNG")
    out = []
    for s in segments:
        sid = int(_get(s, "id"))
        if sid == 0:
            raise ValueError("segment id 0 is VOID and cannot be a segment")
        if sid not in area:
            log.debug("segment %d has no pixels; dropped", sid)
            continue
        cid = int(_get(s, "category_id"))
        if cid not in categories:
            raise ValueError(f"segment {sid}: category_id {cid} is not a known category")
        cat = categories[cid]
        isthing = _get(s, "isthing")
        if isthing is None:
            isthing = bool(_get(cat, "isthing"))
        out.append(
            SegmentRecord(sid, cid, bool(isthing), area[sid], mask_bbox(label_map == sid), float(_get(s, "score", 1.0)))
        )
    return out


# ----------------------------------------------------------------------------- pictures
def png_bytes(array: np.ndarray) -> bytes:
    """PNG-encode an array (lossless) in memory."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _segment_colour(category_colour: Sequence[int] | None, segment_id: int, isthing: bool) -> np.ndarray:
    """Stuff: the category colour. Things: the category colour jittered by a hash of the segment
    id (±40 per channel), so neighbouring instances of one class differ, reproducibly."""
    if category_colour is None:
        h = zlib.crc32(str(segment_id).encode())
        base = np.array([h & 255, (h >> 8) & 255, (h >> 16) & 255], dtype=np.int64)
    else:
        base = np.array(category_colour, dtype=np.int64)
    if isthing:
        h = zlib.crc32(segment_id.to_bytes(4, "little"))
        base = base + np.array([(h & 0xFF) % 81, ((h >> 8) & 0xFF) % 81, ((h >> 16) & 0xFF) % 81]) - 40
    return np.clip(base, 0, 255).astype(np.uint8)


def overlay(
    image: np.ndarray,
    label_map: np.ndarray,
    records: Sequence[SegmentRecord],
    categories: Mapping[int, Mapping | Any],
    *,
    alpha: float = 0.55,
    names: bool = True,
) -> np.ndarray:
    """The image blended with one colour per segment, outlines in white, optional category names.

    VOID pixels keep the image as is. Returns ``H × W × 3`` uint8.
    """
    image = np.asarray(image, dtype=np.uint8)
    if image.shape[:2] != label_map.shape:
        raise ValueError(f"image {image.shape[:2]} and label map {label_map.shape} differ in size")
    colour = np.zeros(image.shape, dtype=np.uint8)
    for r in records:
        cat = categories.get(r.category_id)
        c = _get(cat, "color") if cat is not None else None
        colour[label_map == r.id] = _segment_colour(c, r.id, r.isthing)
    painted = label_map != 0
    out = image.astype(np.float32)
    out[painted] = (1 - alpha) * out[painted] + alpha * colour[painted].astype(np.float32)
    # outlines: pixels whose right or lower neighbour has another id
    edge = np.zeros(label_map.shape, dtype=bool)
    edge[:, :-1] |= label_map[:, :-1] != label_map[:, 1:]
    edge[:-1, :] |= label_map[:-1, :] != label_map[1:, :]
    out[edge] = 255.0
    result = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    if names and records:
        draw = ImageDraw.Draw(result)
        font = ImageFont.load_default()
        for r in records:
            cat = categories.get(r.category_id)
            text = str(_get(cat, "name", r.category_id)) if cat is not None else str(r.category_id)
            if r.isthing:
                text += f" {r.score:.2f}"
            ys, xs = np.nonzero(label_map == r.id)
            k = len(ys) // 2  # a pixel of the segment near its middle row, so the label sits on it
            order = np.argsort(ys, kind="stable")
            x, y = int(xs[order[k]]), int(ys[order[k]])
            box = draw.textbbox((x, y), text, font=font)
            draw.rectangle(box, fill=(0, 0, 0))
            draw.text((x, y), text, fill=(255, 255, 255), font=font)
    return np.asarray(result)


# ----------------------------------------------------------------------------- writer
def _category_map(categories: Iterable[Mapping | Any]) -> dict[int, dict]:
    out = {}
    for c in categories:
        rec = {
            "id": int(_get(c, "id")),
            "name": str(_get(c, "name", _get(c, "id"))),
            "isthing": int(bool(_get(c, "isthing"))),
            "supercategory": str(_get(c, "supercategory", "") or ""),
        }
        colour = _get(c, "color")
        if colour is not None:
            rec["color"] = [int(v) for v in colour]
        out[rec["id"]] = rec
    if not out:
        raise PointlyError("no categories", fix="the checkpoint or dataset must name its categories")
    return out


class PanopticWriter:
    """Collects per-image predictions into a COCO panoptic folder (see the module docstring).

    Use as a context manager or call :meth:`close`; the JSON is written on close (atomically),
    each PNG and overlay as soon as :meth:`add` is called.
    """

    def __init__(
        self,
        out_dir: str | Path,
        categories: Iterable[Mapping | Any],
        *,
        overlays: bool = True,
        names: bool = True,
        json_name: str = "predictions.json",
        png_subdir: str = "panoptic",
        overlay_subdir: str = "overlays",
    ) -> None:
        self.out_dir = Path(out_dir)
        self.categories = _category_map(categories)
        self.overlays = overlays
        self.names = names
        self.json_path = self.out_dir / json_name
        self.png_dir = self.out_dir / png_subdir
        self.overlay_dir = self.out_dir / overlay_subdir
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self._stems: set[str] = set()
        self.png_dir.mkdir(parents=True, exist_ok=True)
        if overlays:
            self.overlay_dir.mkdir(parents=True, exist_ok=True)

    def add(
        self,
        image_id: int | str,
        file_name: str,
        label_map: np.ndarray,
        segments: Sequence[Any],
        image: np.ndarray | None = None,
    ) -> dict:
        """Write one image's PNG (and overlay) and remember its annotation; returns the annotation.

        ``file_name`` is the original image's name (its stem names the PNG); ``image`` (RGB uint8)
        is needed for the overlay.
        """
        label_map = np.asarray(label_map)
        try:
            records = segment_records(label_map, segments, self.categories)
        except ValueError as exc:
            raise PointlyError(
                str(exc), record=f"image {file_name}", fix="the prediction's label map and segments disagree"
            ) from None
        stem = Path(file_name).stem
        if stem in self._stems:  # two inputs called a.jpg in different folders
            k = 2
            while f"{stem}_{k}" in self._stems:
                k += 1
            stem = f"{stem}_{k}"
        self._stems.add(stem)
        png_name = f"{stem}.png"
        write_bytes_atomic(self.png_dir / png_name, png_bytes(encode_panoptic_png(label_map)))
        if self.overlays and image is not None:
            pic = overlay(image, label_map, records, self.categories, names=self.names)
            buf = io.BytesIO()
            Image.fromarray(pic).save(buf, format="JPEG", quality=90)
            write_bytes_atomic(self.overlay_dir / f"{stem}.jpg", buf.getvalue())
        h, w = label_map.shape
        self.images.append({"id": image_id, "file_name": Path(file_name).name, "width": int(w), "height": int(h)})
        ann = {"image_id": image_id, "file_name": png_name, "segments_info": [r.to_json() for r in records]}
        self.annotations.append(ann)
        return ann

    def document(self) -> dict:
        return {
            "info": {"description": "pointly panoptic predictions"},
            "images": self.images,
            "annotations": self.annotations,
            "categories": list(self.categories.values()),
        }

    def close(self) -> Path:
        """Write the JSON (atomically) and return its path."""
        write_json_atomic(self.json_path, self.document())
        return self.json_path

    def __enter__(self) -> PanopticWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()


# ----------------------------------------------------------------------------- model → files
def model_categories(cfg: Any, fallback: Iterable[Mapping] | None = None) -> list[dict]:
    """The dataset categories a model predicts, in its contiguous order (things, then stuff).

    Names and colours come from ``fallback`` when given (``--categories``, or the evaluation
    dataset's categories), else from the categories the checkpoint stores (``cfg.categories``,
    filled from the training data). A checkpoint without them is refused, never named by a guess.
    """
    thing_ids, stuff_ids = list(cfg.thing_ids), list(cfg.stuff_ids)
    if not thing_ids and not stuff_ids:
        raise PointlyError(
            "the checkpoint names no categories (config thing_ids/stuff_ids are empty)",
            fix="re-save it from a training run or convert-weights",
        )
    wanted = set(thing_ids) | set(stuff_ids)
    known: dict[int, dict] = {}
    for src in ([list(fallback)] if fallback is not None else []) + [list(getattr(cfg, "categories", []) or [])]:
        by_id = {int(_get(c, "id")): c for c in src}
        if src and wanted <= set(by_id):
            known = {i: dict(_category_map([by_id[i]])[i]) for i in wanted}
            break
    if not known:
        raise PointlyError(
            "the checkpoint does not name its categories (a checkpoint saved before "
            "checkpoints stored them, or categories that do not cover its class ids)",
            fix="pass --categories FILE (a COCO JSON or category list of the training data)",
        )
    out = []
    for cid, isthing in [(i, 1) for i in thing_ids] + [(i, 0) for i in stuff_ids]:
        rec = known[cid]
        rec["isthing"] = isthing
        out.append(rec)
    return out


def prediction_segments(prediction: Any) -> tuple[np.ndarray, list[dict]]:
    """(label map, segments as dicts with id, category_id, isthing, score) of a model prediction.

    Accepts :class:`pointly.model.network.inference.PanopticPrediction` (``label_map`` and ``segments``
    whose records carry dataset ``category_id``) or a ``(label_map, segments)`` pair.
    """
    if isinstance(prediction, tuple):
        label_map, segments = prediction
    else:
        label_map, segments = prediction.label_map, prediction.segments
    if hasattr(label_map, "detach"):
        label_map = label_map.detach().cpu().numpy()
    segs = []
    for s in segments:
        rec = {
            "id": int(_get(s, "id")),
            "category_id": int(_get(s, "category_id")),
            "score": float(_get(s, "score", 1.0)),
        }
        if _get(s, "isthing") is not None:
            rec["isthing"] = bool(_get(s, "isthing"))
        segs.append(rec)
    return np.asarray(label_map, dtype=np.int64), segs


def predict_to_folder(
    model: Any,
    items: Sequence[tuple[Any, Path]],
    out_dir: str | Path,
    categories: Sequence[Mapping],
    *,
    overlays: bool = True,
    names: bool = True,
    progress: bool = True,
    sizes: Mapping[Any, tuple[int, int]] | None = None,
    precision: str = "fp32",
    rank: int = 0,
    world: int = 1,
) -> tuple[Path | None, int, list[tuple[Path, str]]]:
    """Run ``model.predict`` on each ``(image_id, image path)`` and write a COCO panoptic folder.

    Unreadable images are skipped with a warning (and listed in the return value) instead of
    stopping the run. ``sizes`` (image id → (height, width), from a ground truth) makes an image
    whose EXIF orientation disagrees with its annotation be read as stored, and any other size
    mismatch an error. ``precision`` (``fp32`` / ``bf16`` / ``fp16``) runs the network under that
    autocast (:func:`inference_precision`). Returns ``(json path, images written, [(skipped path, reason)])``.

    With ``world`` > 1 (an initialised ``torch.distributed`` group) each rank predicts every
    ``world``-th image from its ``rank``; rank 0 gathers the label maps and writes the folder in the
    order of ``items``, so the files are those of one process; the other ranks return ``(None, 0, [])``.
    """
    from tqdm import tqdm

    autocast = inference_precision(str(getattr(model, "device", "cpu")), precision)
    mine = [(k, image_id, path) for k, (image_id, path) in enumerate(items) if k % world == rank]

    def predicted():  # (position, rgb, label map, segments), or (position, None, None, skip reason)
        for k, image_id, path in tqdm(mine, desc="predict", unit="img", disable=not progress or rank != 0, file=None):
            try:
                rgb = _read_for(path, image_id, sizes)
            except PointlyError as exc:
                if "annotation says" in exc.problem:  # a size mismatch is the user's data, not a skip
                    raise
                log.info("skipped: %s", exc.one_line())  # reported by the caller, from the returned list
                yield k, None, None, exc.problem
                continue
            with autocast:
                (prediction,) = model.predict([rgb])
            yield (k, rgb, *prediction_segments(prediction))

    if world > 1:  # gather every rank's label maps (compressed) on rank 0, which writes them in order
        import torch.distributed as dist

        local = [(k, None if lm is None else _pack(lm), segs) for k, _, lm, segs in predicted()]
        gathered: list | None = [None] * world if rank == 0 else None
        dist.gather_object(local, gathered, dst=0)
        if rank != 0:
            return None, 0, []
        merged = sorted((r for part in gathered for r in part), key=lambda r: r[0])
        stream = (
            (
                k,
                None if lm is None or not overlays else _read_for(items[k][1], items[k][0], sizes),
                None if lm is None else _unpack(lm),
                segs,
            )
            for k, lm, segs in merged
        )
    else:  # one process: written as predicted, nothing held in memory
        stream = predicted()
    skipped: list[tuple[Path, str]] = []
    written = 0
    with PanopticWriter(out_dir, categories, overlays=overlays, names=names) as writer:
        for k, rgb, label_map, segs in stream:
            image_id, path = items[k]
            if label_map is None:
                skipped.append((Path(path), segs))
                continue
            writer.add(image_id, Path(path).name, label_map, segs, image=rgb if overlays else None)
            written += 1
    return writer.json_path, written, skipped


def _read_for(path: Path, image_id: Any, sizes: Mapping[Any, tuple[int, int]] | None) -> np.ndarray:
    """The image as RGB, EXIF-oriented unless that contradicts the size its annotation gives."""
    rgb = read_rgb(path)
    want = sizes.get(image_id) if sizes is not None else None
    if want is not None and rgb.shape[:2] != tuple(want):
        raw = read_rgb(path, exif=False)
        if raw.shape[:2] != tuple(want):
            raise PointlyError(
                f"image is {rgb.shape[1]}x{rgb.shape[0]} but the annotation says {want[1]}x{want[0]}",
                file=path,
                record=f"image_id {image_id}",
                fix="the images and the annotation file do not belong together",
            )
        rgb = raw
    return rgb


def _pack(label_map: np.ndarray) -> tuple[tuple[int, ...], bytes]:
    """A label map as compressed bytes, to gather many of them on one rank cheaply."""
    return label_map.shape, zlib.compress(np.ascontiguousarray(label_map, dtype=np.int64).tobytes(), 1)


def _unpack(packed: tuple[tuple[int, ...], bytes]) -> np.ndarray:
    shape, data = packed
    return np.frombuffer(zlib.decompress(data), dtype=np.int64).reshape(shape)


PRECISIONS = ("fp32", "bf16", "fp16")


def inference_precision(device: str, precision: str):
    """The autocast context of ``--precision`` on ``device``: ``fp32`` none; ``bf16`` bfloat16
    autocast (CPU or CUDA; on CPUs with AVX512-BF16/AMX about 1.6× faster at 800 px, see
    benchmarks/results_inference.md); ``fp16`` float16 autocast (CUDA only). The network runs in the
    low precision, everything after it in float32 (:meth:`pointly.model.network.panoptic_fcn.PanopticFCN.predict`)."""
    import contextlib

    import torch

    if precision not in PRECISIONS:
        raise PointlyError(f"unknown precision {precision!r}", fix=f"use one of {', '.join(PRECISIONS)}")
    dev = torch.device(device)
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and dev.type != "cuda":
        raise PointlyError(
            f"--precision fp16 needs a CUDA device, not {device!r}",
            fix="use --precision bf16 on the CPU, or --device cuda",
        )
    if dev.type not in ("cpu", "cuda"):
        raise PointlyError(f"--precision {precision} is not supported on {device!r}", fix="use --precision fp32")
    return torch.autocast(dev.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def check_device(device: str) -> str:
    """Validate a ``--device`` value (``cpu``, ``cuda``, ``cuda:N``, ``mps``) before loading a model."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise PointlyError(f"unknown device {device!r}", fix="use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PointlyError(f"device {device!r} asked for but no CUDA GPU is available", fix="use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PointlyError(
                f"device {device!r}: only {torch.cuda.device_count()} GPU(s) here", fix="pick an existing GPU index"
            )
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise PointlyError("device 'mps' asked for but it is not available", fix="use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise PointlyError(f"unsupported device {device!r}", fix="use cpu, cuda or cuda:N")
    return device
