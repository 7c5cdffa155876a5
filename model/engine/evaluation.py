"""Evaluating COCO panoptic predictions: PQ, SQ, RQ as panopticapi's ``pq_compute`` computes them.

The arithmetic, the result's shape and panopticapi's quirks are those of
:mod:`pointly.pointgen.metrics.pq` (hotcoco underneath), shared with the target quality. This
module adds what a user's files need around it:

* input checks that turn every user mistake into one :class:`PointlyError` line (missing
  files or folders, images without a prediction, unknown categories, PNG/JSON mismatches);
* image ids renumbered 1..N (hotcoco wants integers; COCO allows any JSON value) and predictions
  for images without ground truth dropped before their PNGs are opened;
* :func:`pq_from_arrays` for in-memory label maps (tests, training-time validation), which writes
  a temporary COCO panoptic folder and runs the very same path;
* :func:`format_table` and :func:`results_to_json` for reports; :func:`evaluate_checkpoint`
  (predict a dataset with a checkpoint, then score it). Guide: docs/evaluate.md.

One module, though long: every way in (files, arrays, a checkpoint under torchrun) goes through the
same input checks and the same PQ call, and most of the length is those checks' one-line messages.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pointly.pointgen.base.coco import encode_panoptic_png, load_json_object, records
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import staged_folder, write_json_atomic
from pointly.pointgen.base.limits import check_image_size
from pointly.pointgen.metrics.pq import GROUPS, panoptic_quality

log = logging.getLogger(__name__)

__all__ = ["pq_compute", "pq_from_arrays", "format_table", "GROUPS"]


# ----------------------------------------------------------------------------- loading / checks
def _load_json(path: Path, what: str) -> dict:
    """A COCO panoptic JSON: a JSON object with an ``annotations`` list."""
    doc = load_json_object(path, what)
    if not isinstance(doc.get("annotations"), list):
        raise PointlyError(
            "not a COCO panoptic JSON (no 'annotations' list)",
            file=path,
            fix="pass the panoptic JSON with annotations[].segments_info",
        )
    return doc


def _check_annotations(doc: dict, path: Path, *, gt: bool) -> dict[Any, dict]:
    """Index annotations by image id, checking the fields the evaluation reads."""
    by_image: dict[Any, dict] = {}
    for i, ann in enumerate(doc["annotations"]):
        rec = f"annotations[{i}]"
        if (
            not isinstance(ann, dict)
            or "image_id" not in ann
            or "file_name" not in ann
            or not isinstance(ann.get("segments_info"), list)
        ):
            raise PointlyError(
                "annotation lacks image_id, file_name or segments_info",
                file=path,
                record=rec,
                fix="each annotation needs image_id, file_name, segments_info",
            )
        rec = f"{rec} (image_id {ann['image_id']})"
        seen = set()
        for j, s in enumerate(ann["segments_info"]):
            need = ("id", "category_id", "iscrowd", "area") if gt else ("id", "category_id")
            missing = [k for k in need if not isinstance(s, dict) or k not in s]
            if missing:
                raise PointlyError(
                    f"segments_info[{j}] lacks {', '.join(missing)}",
                    file=path,
                    record=rec,
                    fix="ground-truth segments need id, category_id, iscrowd and area; "
                    "predicted ones need id and category_id",
                )
            for k in ("id", "category_id"):
                if not isinstance(s[k], int) or isinstance(s[k], bool):
                    raise PointlyError(
                        f"segments_info[{j}].{k} is {s[k]!r}, not an integer",
                        file=path,
                        record=rec,
                        fix="segment ids and category ids are integers",
                    )
            if s["id"] in seen:
                raise PointlyError(
                    f"segment id {s['id']} appears twice",
                    file=path,
                    record=rec,
                    fix="segment ids must be unique within an image",
                )
            seen.add(s["id"])
        key = _id_key(ann["image_id"])
        if gt and key in by_image:
            raise PointlyError(
                f"image_id {ann['image_id']} has two annotations",
                file=path,
                record=rec,
                fix="merge them: one annotation per image",
            )
        by_image[key] = ann  # predictions: the last one counts, as in panopticapi
    return by_image


def _check_images(doc: dict, path: Path) -> None:
    """The ``images`` list, when present: COCO image records, unique ids, sizes within the
    pixel budget. The evaluation reads sizes from the ground truth's records; a prediction file's
    own records are not used, but a malformed list there means a wrong or damaged file."""
    seen = set()
    for i, im in enumerate(records(doc, "images", path)):
        rec = f"images[{i}]"
        if not isinstance(im, dict) or not all(k in im for k in ("id", "file_name", "width", "height")):
            raise PointlyError(
                "image record lacks id, file_name, width or height",
                file=path,
                record=rec,
                fix="each image needs id, file_name, width and height (COCO format)",
            )
        check_image_size(im["width"], im["height"], file=path, record=f"{rec} (id {im['id']})")
        key = _id_key(im["id"])
        if key in seen:
            raise PointlyError(
                f"duplicate image id {im['id']}", file=path, record=rec, fix="give every image a unique id"
            )
        seen.add(key)


def _check_categories(doc: dict, path: Path) -> dict[int, dict]:
    cats = doc.get("categories")
    if not isinstance(cats, list) or not cats:
        raise PointlyError("no categories", file=path, fix="the ground-truth panoptic JSON needs a categories list")
    out = {}
    for i, c in enumerate(cats):
        if not isinstance(c, dict) or not isinstance(c.get("id"), int) or "isthing" not in c:
            raise PointlyError(
                "category lacks an integer id or isthing",
                file=path,
                record=f"categories[{i}]",
                fix="each category needs id, name and isthing (0/1)",
            )
        out[c["id"]] = c
    return out


def _check_inputs(gt_doc: dict, gt_json: Path, gt_dir: Path, pred_doc: dict, pred_json: Path, pred_dir: Path) -> None:
    cats = _check_categories(gt_doc, gt_json)
    _check_images(gt_doc, gt_json)
    _check_images(pred_doc, pred_json)
    gt_anns = _check_annotations(gt_doc, gt_json, gt=True)
    pred_anns = _check_annotations(pred_doc, pred_json, gt=False)
    for folder, what, opt in (
        (gt_dir, "ground-truth PNG folder", "--gt-dir"),
        (pred_dir, "prediction PNG folder", "--pred-dir"),
    ):
        if not folder.is_dir():
            raise PointlyError(f"{what} not found", file=folder, fix=f"pass the folder of PNGs as {opt}")
    if not gt_anns:
        raise PointlyError("no ground-truth annotations", file=gt_json, fix="nothing to evaluate")
    for key, gann in gt_anns.items():
        image_id = gann["image_id"]
        pann = pred_anns.get(key)
        if pann is None:
            raise PointlyError(
                f"no prediction for image_id {image_id}",
                file=pred_json,
                fix="predict every ground-truth image (panopticapi needs all of them)",
            )
        for ann, folder, which in ((gann, gt_dir, "ground-truth"), (pann, pred_dir, "predicted")):
            if not (folder / ann["file_name"]).is_file():
                raise PointlyError(
                    f"{which} PNG {ann['file_name']} not found",
                    file=folder,
                    record=f"image_id {image_id}",
                    fix="the PNG folder and the JSON do not belong together",
                )
        for s in pann["segments_info"]:
            if s["category_id"] not in cats:
                raise PointlyError(
                    f"predicted segment {s['id']} has unknown category_id {s['category_id']}",
                    file=pred_json,
                    record=f"image_id {image_id}",
                    fix="predictions must use the ground truth's category ids",
                )


# ----------------------------------------------------------------------------- results
def pq_compute(
    gt_json: str | Path, gt_dir: str | Path | None, pred_json: str | Path, pred_dir: str | Path | None = None
) -> dict:
    """Evaluate COCO panoptic predictions against ground truth, as panopticapi's ``pq_compute``.

    ``gt_dir`` / ``pred_dir`` default to the JSON path without ``.json`` (panopticapi's rule).
    Returns ``{"All", "Things", "Stuff"}`` (each ``pq``, ``sq``, ``rq`` as fractions and ``n``,
    the number of categories averaged) and ``"per_class"`` (category id → ``pq``, ``sq``, ``rq``,
    plus ``tp``, ``fp``, ``fn`` and the summed ``iou``). Raises :class:`PointlyError` on bad input.
    """
    gt_json, pred_json = Path(gt_json), Path(pred_json)
    gt_dir = Path(gt_dir) if gt_dir is not None else default_png_dir(gt_json)
    pred_dir = Path(pred_dir) if pred_dir is not None else default_png_dir(pred_json)
    gt_doc = _load_json(gt_json, "ground-truth panoptic JSON")
    pred_doc = _load_json(pred_json, "prediction panoptic JSON")
    _check_inputs(gt_doc, gt_json, gt_dir, pred_doc, pred_json, pred_dir)
    return _evaluate(gt_doc, gt_dir, pred_doc, pred_dir, pred_json)


def default_png_dir(json_path: Path) -> Path:
    """The PNG folder of a panoptic JSON when none is given: panopticapi's rule (the JSON path
    without ``.json``: ``panoptic_val2017.json`` → ``panoptic_val2017/``) when that folder exists,
    else ``panoptic/`` beside the JSON (what ``pointly predict`` writes), else panopticapi's rule
    (so that the error names it)."""
    beside = json_path.parent / "panoptic"
    if not json_path.with_suffix("").is_dir() and beside.is_dir():
        return beside
    return json_path.with_suffix("")


def _id_key(value: Any) -> str:
    """A hashable, type-preserving key for a JSON image id (1 and "1" stay different)."""
    return json.dumps(value, sort_keys=True)


def _evaluate(gt_doc: dict, gt_dir: Path, pred_doc: dict, pred_dir: Path, pred_json: Path | str) -> dict:
    # Only the images that have ground truth are evaluated (as the reference); extra predictions
    # are dropped here so that their PNGs are never opened.
    # Image ids are renumbered 1..N (hotcoco wants integers; COCO allows any JSON value).
    index = {}
    for a in gt_doc["annotations"]:
        index.setdefault(_id_key(a["image_id"]), len(index) + 1)
    gt_doc = dict(
        gt_doc,
        annotations=[dict(a, image_id=index[_id_key(a["image_id"])]) for a in gt_doc["annotations"]],
        images=[
            dict(im, id=index[_id_key(im["id"])])
            for im in gt_doc.get("images", [])
            if isinstance(im, dict) and _id_key(im.get("id")) in index
        ],
    )
    last = {_id_key(a["image_id"]): a for a in pred_doc["annotations"]}  # the last one counts
    pred_doc = {
        "annotations": [dict(a, image_id=index[k]) for k, a in last.items() if k in index],
        "images": gt_doc["images"],
        "categories": gt_doc["categories"],
    }
    try:
        return panoptic_quality(gt_doc, pred_doc, gt_folder=gt_dir, pred_folder=pred_dir)
    except (ValueError, KeyError, FileNotFoundError, OSError) as exc:
        # hotcoco's messages name the image and segment, e.g. "image 1: predicted segment 5 is in
        # segments_info but not in the mask".
        msg = str(exc)
        if "segments_info" in msg or "category" in msg:
            fix = "each PNG and its segments_info must list the same segment ids, with known categories"
        else:
            fix = "panoptic PNGs must be readable RGB images of the ground truth's size"
        # hotcoco's messages name the image or the PNG; name the prediction JSON only if they do not
        raise PointlyError(msg, file=None if ".png" in msg.lower() else pred_json, fix=fix) from None


# ----------------------------------------------------------------------------- in memory
def _category_dicts(categories: Any) -> list[dict]:
    """Accept a list of COCO category dicts, or a mapping id → Category/dict."""
    items = categories.values() if isinstance(categories, Mapping) else categories
    out = []
    for c in items:
        if isinstance(c, Mapping):
            out.append({"id": int(c["id"]), "name": str(c.get("name", c["id"])), "isthing": int(bool(c["isthing"]))})
        else:  # pointly.pointgen.base.coco.Category or anything with id/name/isthing
            out.append({"id": int(c.id), "name": str(c.name), "isthing": int(bool(c.isthing))})
    if not out:
        raise PointlyError("no categories given", fix="pass the dataset's categories")
    return out


def pq_from_arrays(
    gt: Iterable[tuple[np.ndarray, Sequence[Mapping]]],
    pred: Iterable[tuple[np.ndarray, Sequence[Mapping]]],
    categories: Any,
) -> dict:
    """PQ for in-memory panoptic label maps; same numbers and structure as :func:`pq_compute`.

    ``gt`` and ``pred`` are parallel lists, one ``(label_map, segments_info)`` per image:
    ``label_map`` is an ``H × W`` integer array of segment ids (0 = VOID) and ``segments_info``
    lists dicts with ``id`` and ``category_id`` (ground truth also ``iscrowd``, default 0; a
    missing ``area`` is counted from the label map). ``categories``: COCO category dicts or a
    mapping id → :class:`pointly.pointgen.base.coco.Category`.
    """
    gt, pred = list(gt), list(pred)
    if len(gt) != len(pred):
        raise PointlyError(
            f"{len(gt)} ground-truth images but {len(pred)} predictions",
            fix="pass one prediction per ground-truth image, in the same order",
        )
    cats = _category_dicts(categories)
    cat_ids = {c["id"] for c in cats}
    with tempfile.TemporaryDirectory(prefix="pointly-pq-") as tmp:
        gt_dir, pred_dir = Path(tmp, "gt"), Path(tmp, "pred")
        gt_dir.mkdir()
        pred_dir.mkdir()
        gt_doc = {"images": [], "annotations": [], "categories": cats}
        pred_doc = {"annotations": []}
        for i, ((g_map, g_info), (p_map, p_info)) in enumerate(zip(gt, pred)):
            g_map, p_map = np.asarray(g_map), np.asarray(p_map)
            if g_map.ndim != 2 or g_map.shape != p_map.shape:
                raise PointlyError(
                    f"label maps differ in shape: ground truth {g_map.shape}, prediction {p_map.shape}",
                    record=f"image {i}",
                    fix="predict at the ground truth's resolution",
                )
            for m, what in ((g_map, "ground-truth"), (p_map, "predicted")):
                if m.size and (m.min() < 0 or m.max() >= 256**3):
                    raise PointlyError(
                        f"{what} segment ids outside 0..16777215",
                        record=f"image {i}",
                        fix="segment ids must fit a COCO panoptic PNG",
                    )
            ids, counts = np.unique(g_map, return_counts=True)
            area = dict(zip(ids.tolist(), counts.tolist()))
            g_segs = []
            for s in g_info:
                s = dict(s)
                s.setdefault("iscrowd", 0)
                s.setdefault("area", area.get(int(s["id"]), 0))
                g_segs.append({k: (int(v) if isinstance(v, (np.integer, bool)) else v) for k, v in s.items()})
            p_segs = []
            for s in p_info:
                s = {
                    k: (int(v) if isinstance(v, (np.integer, bool)) else float(v) if isinstance(v, np.floating) else v)
                    for k, v in dict(s).items()
                }
                if s["category_id"] not in cat_ids:
                    raise PointlyError(
                        f"predicted segment {s['id']} has unknown category_id {s['category_id']}",
                        record=f"image {i}",
                        fix="use the ground truth's category ids",
                    )
                p_segs.append(s)
            name = f"{i:06d}.png"
            Image.fromarray(encode_panoptic_png(g_map)).save(gt_dir / name)
            Image.fromarray(encode_panoptic_png(p_map)).save(pred_dir / name)
            gt_doc["images"].append(
                {"id": i, "file_name": name, "width": int(g_map.shape[1]), "height": int(g_map.shape[0])}
            )
            gt_doc["annotations"].append({"image_id": i, "file_name": name, "segments_info": g_segs})
            pred_doc["annotations"].append({"image_id": i, "file_name": name, "segments_info": p_segs})
        if not gt_doc["annotations"]:
            raise PointlyError("no images to evaluate", fix="pass at least one image")
        _check_annotations(gt_doc, Path("<ground truth>"), gt=True)
        _check_annotations(pred_doc, Path("<predictions>"), gt=False)
        return _evaluate(gt_doc, gt_dir, pred_doc, pred_dir, "<predictions>")


# ----------------------------------------------------------------------------- reporting
def format_table(results: Mapping, categories: Any | None = None, *, all_categories: bool = False) -> str:
    """The results as Markdown: PQ/SQ/RQ (×100) for All/Things/Stuff, then one row per category
    present in the ground truth or the predictions.

    Categories with no TP, FP or FN (in neither, so not part of any average) are counted in a
    last line, or listed as "—" with ``all_categories``.
    """
    names = {}
    if categories is not None:
        names = {c["id"]: c.get("name", str(c["id"])) for c in _category_dicts_named(categories)}
    lines = ["| | PQ | SQ | RQ | N |", "|---|---:|---:|---:|---:|"]
    for name, _ in GROUPS:
        g = results[name]
        lines.append(f"| {name} | {100 * g['pq']:.1f} | {100 * g['sq']:.1f} | {100 * g['rq']:.1f} | {g['n']} |")
    per_class = results.get("per_class") or {}
    if per_class:
        lines += ["", "| category | id | PQ | SQ | RQ | TP | FP | FN |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        counted, unseen = [], []
        for cid, r in per_class.items():
            key = int(cid)
            (counted if r.get("tp", 0) + r.get("fp", 0) + r.get("fn", 0) > 0 or "tp" not in r else unseen).append(
                (key, r)
            )
        for key, r in counted:
            lines.append(
                f"| {names.get(key, key)} | {key} | {100 * r['pq']:.1f} | {100 * r['sq']:.1f} | "
                f"{100 * r['rq']:.1f} | {r.get('tp', '')} | {r.get('fp', '')} | {r.get('fn', '')} |"
            )
        if all_categories:
            for key, _r in unseen:
                lines.append(f"| {names.get(key, key)} | {key} | — | — | — | 0 | 0 | 0 |")
        elif unseen:
            lines += [
                "",
                f"{len(unseen)} categories in neither ground truth nor prediction are not listed (--all lists them).",
            ]
    return "\n".join(lines)


def _category_dicts_named(categories: Any) -> list[dict]:
    items = categories.values() if isinstance(categories, Mapping) else categories
    out = []
    for c in items:
        if isinstance(c, Mapping):
            out.append({"id": int(c["id"]), "name": str(c.get("name", c["id"]))})
        else:
            out.append({"id": int(c.id), "name": str(c.name)})
    return out


def results_to_json(results: Mapping) -> dict:
    """A JSON-ready copy (per_class keys become strings, as ``json.dump`` of the reference's dict)."""
    out = {k: dict(v) for k, v in results.items() if k != "per_class"}
    out["per_class"] = {str(k): dict(v) for k, v in results.get("per_class", {}).items()}
    return out


def categories_of(gt_json: str | Path) -> list[dict]:
    """The categories of a COCO panoptic JSON (for names in :func:`format_table`)."""
    path = Path(gt_json)
    doc = _load_json(path, "ground-truth panoptic JSON")
    return list(_check_categories(doc, path).values())


# ----------------------------------------------------------------------------- model + dataset
def resolve_dataset(
    dataset: str | Path, gt_dir: str | Path | None = None, image_dir: str | Path | None = None
) -> tuple[Path, Path, Path]:
    """``synthetic-val`` / ``synthetic-train`` or a COCO panoptic JSON → (JSON, PNG dir, image dir)."""
    name = str(dataset)
    if name in ("synthetic-val", "synthetic-train"):
        from pointly.data.synth import ensure_dataset

        root = ensure_dataset() / name.split("-")[1]
        return root / "panoptic.json", root / "panoptic", root / "images"
    js = Path(name)
    if js.suffix.lower() != ".json":
        raise PointlyError(
            f"unknown dataset {name!r}", fix="use synthetic-val, or a COCO panoptic JSON with --gt-dir and --image-dir"
        )
    png = Path(gt_dir) if gt_dir is not None else js.with_suffix("")
    if image_dir is None:
        for cand in (js.parent / "images", js.parent / js.stem.replace("panoptic_", "")):
            if cand.is_dir():
                image_dir = cand
                break
        else:
            raise PointlyError("no image folder given", file=js, fix="pass --image-dir with the dataset's images")
    return js, png, Path(image_dir)


def _process_group() -> tuple[int, int]:
    """(rank, world size) of a ``torchrun`` launch, with the process group (gloo: it only gathers
    predictions) initialised; (0, 1) otherwise."""
    import os

    world = int(os.environ.get("WORLD_SIZE", 1))
    if world == 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    return dist.get_rank(), world


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str | Path,
    *,
    gt_dir: str | Path | None = None,
    image_dir: str | Path | None = None,
    pred_out: str | Path | None = None,
    limit: int | None = None,
    device: str = "cpu",
    progress: bool = True,
    precision: str = "fp32",
) -> tuple[dict, list[dict]]:
    """Predict a dataset's images with a checkpoint, write COCO panoptic predictions, run PQ.

    Returns ``(results, categories)``. With ``limit`` only the first N ground-truth images are
    predicted and evaluated. Under ``torchrun`` each process predicts every N-th image and rank 0
    scores the whole set (the same files and PQ as one process); the other ranks return
    ``(None, categories)``. Predictions go to ``pred_out`` (kept) or a temporary folder;
    ``precision`` as in :func:`pointly.model.engine.panoptic_io.inference_precision`.
    """
    from pointly.model.engine.checkpoint import load_checkpoint
    from pointly.model.engine.panoptic_io import (
        check_device,
        image_problem,
        inference_precision,
        model_categories,
        predict_to_folder,
    )

    check_device(device)
    inference_precision(device, precision)  # a bad combination fails before any work
    rank, world = _process_group()
    if world > 1 and device == "cuda":
        import os

        device = f"cuda:{os.environ.get('LOCAL_RANK', 0)}"
    gt_json, gt_png, images = resolve_dataset(dataset, gt_dir, image_dir)
    gt_doc = _load_json(gt_json, "ground-truth panoptic JSON")
    cats = _check_categories(gt_doc, gt_json)
    _check_annotations(gt_doc, gt_json, gt=True)
    if not images.is_dir():
        raise PointlyError("image folder not found", file=images, fix="pass --image-dir")
    model = load_checkpoint(checkpoint, device=device)
    model_cats = model_categories(model.cfg, cats.values())
    unknown = [c["id"] for c in model_cats if c["id"] not in cats]
    if unknown:
        raise PointlyError(
            f"the model predicts category ids {unknown[:5]} that the dataset does not have",
            file=gt_json,
            fix="evaluate on the dataset the model was trained for",
        )
    image_by_id = {im["id"]: im for im in gt_doc.get("images", [])}
    anns = gt_doc["annotations"][:limit] if limit else gt_doc["annotations"]
    items = []
    for ann in anns:
        im = image_by_id.get(ann["image_id"])
        if im is None:
            raise PointlyError(f"image_id {ann['image_id']} has no images record", file=gt_json)
        items.append((ann["image_id"], images / im["file_name"]))
    sizes = {
        im["id"]: (int(im["height"]), int(im["width"]))
        for im in image_by_id.values()
        if "height" in im and "width" in im
    }
    unreadable = [(path, reason) for _, path in items if (reason := image_problem(path)) is not None]
    if unreadable:  # before anything is written to pred_out
        raise PointlyError(
            f"{len(unreadable)} dataset images cannot be read, e.g. {unreadable[0][0]} ({unreadable[0][1]})",
            file=images,
            fix="every ground-truth image needs a readable image file",
        )
    if rank != 0:  # predict this rank's share; rank 0 gathers, writes and scores the whole set
        predict_to_folder(
            model,
            items,
            Path(tempfile.gettempdir()),
            model_cats,
            overlays=False,
            progress=False,
            sizes=sizes,
            precision=precision,
            rank=rank,
            world=world,
        )
        return None, list(cats.values())
    with (
        tempfile.TemporaryDirectory(prefix="pointly-eval-") as tmp,
        staged_folder(pred_out) if pred_out is not None else contextlib.nullcontext(Path(tmp)) as out,
    ):
        # predictions kept in pred_out are staged there: all of them or none
        pred_json, written, skipped = predict_to_folder(
            model,
            items,
            out,
            model_cats,
            overlays=pred_out is not None,
            progress=progress,
            sizes=sizes,
            precision=precision,
            rank=rank,
            world=world,
        )
        if skipped:
            raise PointlyError(
                f"{len(skipped)} dataset images could not be read, e.g. {skipped[0][0]}",
                file=images,
                fix="every ground-truth image needs a readable image file",
            )
        sub_gt = dict(gt_doc, annotations=anns)
        sub_gt_json = Path(tmp) / "gt_subset.json"
        write_json_atomic(sub_gt_json, sub_gt)
        results = pq_compute(sub_gt_json, gt_png, pred_json, out / "panoptic")
    return results, list(cats.values())
