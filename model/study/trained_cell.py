"""How the trained study scores one cell: simulate → price → train → evaluate
(:class:`PipelineRunner`, the trained depth's scorer of :mod:`pointly.model.study.engine`), and the
dataset paths it reads. The presets and the study's entry points are in
:mod:`pointly.model.study.trained`."""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pointly.model.study.grid import Cell
from pointly.model.study.store import plain
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_json_atomic

if TYPE_CHECKING:
    from pointly.model.study.trained import StudyPreset


def _pct(v: Any) -> float | None:
    return None if v is None else 100.0 * float(v)


def metrics_row(results: Mapping[str, Any]) -> dict[str, Any]:
    """PQ/SQ/RQ (in percent) overall, things and stuff from a ``pq_compute``-shaped result."""
    row: dict[str, Any] = {}
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        g = results[group]
        for k in ("pq", "sq", "rq"):
            row[k + suffix] = _pct(g[k])
    row["n_th"] = int(results["Things"]["n"])
    row["n_st"] = int(results["Stuff"]["n"])
    return row


@dataclass
class DataPaths:
    """The train/val panoptic JSON, PNG folder and image folder of a study's dataset."""

    train_json: Path
    train_png: Path
    train_images: Path
    val_json: Path
    val_png: Path
    val_images: Path

    @classmethod
    def of_folder(cls, root: str | Path, splits: tuple[str, str] = ("train", "val")) -> DataPaths:
        """The paths of the ``splits`` (train, val) of a folder in any layout that
        :func:`~pointly.model.engine.data.coco_split_paths` reads (COCO's, or ``pointly data synth``'s)."""
        from pointly.model.engine.data import coco_split_paths

        return cls(*coco_split_paths(root, splits[0]), *coco_split_paths(root, splits[1]))


class PipelineRunner:
    """simulate → cost → train → evaluate for one cell: the trained depth's scorer
    (:class:`~pointly.model.study.engine.Scorer`; it keeps ``cells/<id>/``).

    * points: :func:`pointly.pointgen.points.simulate.simulate` on the training split's masks
      (seeded by the cell's seed), saved as ``cells/<id>/points.json``; the model then trains from
      that file and the images only (:class:`pointly.model.engine.point_targets.PointSupervision`);
    * full masks: the model's own fully supervised training set;
    * annotation seconds: :func:`pointly.pointgen.points.cost.modelled_seconds` for points (0.9 s per
      point), the full-mask cost (79 s per thing, 45 s per stuff segment) for the reference;
    * training: :func:`pointly.model.engine.train.train` into ``cells/<id>/train`` with the preset's
      model config and ``iters`` iterations; an interrupted cell resumes from its checkpoint;
      the training seed is the cell's seed (preset ``training_seed="cell"``: the seed axis varies
      sampling and training together, paired across cells) or the config's (``"fixed"``: the
      sampling only, as in the first studies);
    * evaluation: :func:`pointly.model.engine.evaluation.evaluate_checkpoint` on the validation split.
    """

    needs_folder = True

    def __init__(
        self,
        preset: StudyPreset,
        *,
        data: DataPaths | None = None,
        device: str | None = None,
        data_root: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.preset = preset
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.data_root = data_root
        self.progress = progress
        self._data = data
        self._train_ds = None
        self._weights: Path | None = None

    # -- data ------------------------------------------------------------------------------
    def data(self) -> DataPaths:
        if self._data is None:
            p = self.preset
            if p.dataset == "synthetic":
                from pointly.data.synth import ensure_dataset

                root = ensure_dataset(self.data_root, progress=self.progress, **p.synthetic)
                self._data = DataPaths.of_folder(root)
            else:
                keys = (
                    "train_json",
                    "train_panoptic_dir",
                    "train_image_dir",
                    "val_json",
                    "val_panoptic_dir",
                    "val_image_dir",
                )
                missing = [k for k in keys if not p.coco.get(k)]
                if missing:
                    raise PointlyError(
                        f"the coco study needs {', '.join(missing)}",
                        fix="pass --coco-root DIR (train2017/val2017 layout) or the six paths",
                    )
                self._data = DataPaths(*(Path(p.coco[k]) for k in keys))
        return self._data

    def backbone_weights(self) -> Path | None:
        """The tag pre-trained trunk every cell starts from (made once and cached, beside the
        synthetic datasets), or None when the preset starts from random init."""
        settings = self.preset.backbone_pretraining
        if settings is None:
            return None
        if self._weights is None:
            from pointly.model.engine.config import load_config
            from pointly.model.engine.pretrain import TagPretraining, ensure_pretrained

            p = self.preset
            cfg = load_config(p.model_config, tuple(p.config_overrides))
            self._weights = ensure_pretrained(cfg, TagPretraining(**settings), self.data_root, progress=self.progress)
        return self._weights

    def train_dataset(self):
        if self._train_ds is None:
            from pointly.pointgen.base.coco import PanopticDataset

            d = self.data()
            self._train_ds = PanopticDataset(d.train_json, d.train_png, check=False)
        return self._train_ds

    # -- one cell --------------------------------------------------------------------------
    def config(self, cell: Cell):
        """The model config of a cell: the preset's, with its paths and training length."""
        from pointly.model.engine.config import load_config

        p = self.preset
        cfg = load_config(p.model_config, tuple(p.config_overrides))
        d = self.data()
        cfg.data.kind = "coco_panoptic"
        cfg.data.train_json, cfg.data.train_panoptic_dir, cfg.data.train_image_dir = (
            str(d.train_json),
            str(d.train_png),
            str(d.train_images),
        )
        cfg.data.val_json, cfg.data.val_panoptic_dir, cfg.data.val_image_dir = (
            str(d.val_json),
            str(d.val_png),
            str(d.val_images),
        )
        cfg.solver.max_iter = int(p.iters)
        if p.training_seed == "cell":
            cfg.seed = int(cell.seed)
        elif p.training_seed != "fixed":
            raise PointlyError(f"unknown training_seed {p.training_seed!r}", fix="use cell or fixed")
        weights = self.backbone_weights()
        if weights is not None:
            from pointly.model.engine.backbone_weights import apply_conventions

            apply_conventions(cfg, weights)
        cfg.solver.warmup_iters = min(cfg.solver.warmup_iters, max(1, p.iters // 10))
        cfg.solver.checkpoint_period = max(1, min(cfg.solver.checkpoint_period, p.iters // 4 or 1))
        return cfg

    def target_options(self, cell: Cell):
        """The cell's :class:`~pointly.pointgen.targets.options.TargetOptions` (its shape, concave
        ratio, dilation and rules; ``custom`` rules are the preset's rule fields)."""
        rules = self.preset.target_rules
        return cell.target_options(rules if isinstance(rules, Mapping) else None)

    def full_mask_seconds(self) -> tuple[float, int]:
        """Seconds to draw every non-crowd segment of the training split as a full mask, and their count."""
        from pointly.pointgen.points.cost import CostModel

        ds, model = self.train_dataset(), CostModel()
        total, n = 0.0, 0
        for im in ds.images:
            for s in ds.segments_info(im.id):
                if s.get("iscrowd", 0):
                    continue
                total += model.mask_seconds(ds.categories[int(s["category_id"])].isthing)
                n += 1
        return total, n

    def score(self, cell: Cell, cell_dir: Path) -> dict[str, Any]:
        from pointly.model.engine.evaluation import evaluate_checkpoint
        from pointly.model.engine.train import train

        cfg = self.config(cell)
        d = self.data()
        row: dict[str, Any] = {"images": len(self.train_dataset().images)}
        dataset = None
        if cell.supervision == "points":
            from pointly.model.engine.data import PanopticTrainSet
            from pointly.model.engine.point_targets import PointSupervision
            from pointly.pointgen.base.points_format import save_points
            from pointly.pointgen.points.cost import modelled_seconds
            from pointly.pointgen.points.simulate import SimulationOptions, simulate

            points_json = cell_dir / "points.json"
            doc = simulate(
                self.train_dataset(),
                SimulationOptions(
                    points=cell.points,
                    boundary_share=cell.boundary_share,
                    seed=cell.seed,
                    edge_is_boundary=self.preset.edge_is_boundary,
                ),
                workers=max(1, min(8, (os.cpu_count() or 1) // 2)),
            ).document
            save_points(points_json, doc)
            row["annotation_seconds"] = modelled_seconds(doc)
            row["segments"] = len(doc["annotations"])
            dataset = PanopticTrainSet(
                cfg,
                "train",
                supervision=PointSupervision(points_json, options=self.target_options(cell)),
                image_dir=d.train_images,
            )
            write_json_atomic(cell_dir / "target_options.json", dataset.supervision.options.to_dict(), indent=2)
        else:
            row["annotation_seconds"], row["segments"] = self.full_mask_seconds()
        row["seconds_per_segment"] = row["annotation_seconds"] / max(row["segments"], 1)
        row["seconds_per_image"] = row["annotation_seconds"] / max(row["images"], 1)

        run_dir = cell_dir / "train"
        resume = (run_dir / "checkpoint.pth").is_file()
        t0 = time.perf_counter()
        result = train(cfg, run_dir, resume=resume, device=self.device, dataset=dataset, progress=self.progress)
        row["train_seconds"] = time.perf_counter() - t0
        row["final_loss"] = _final_loss(run_dir / "metrics.csv")
        ckpt = result.final if getattr(result, "final", None) else run_dir / "model_final.pth"
        t0 = time.perf_counter()
        results, _cats = evaluate_checkpoint(
            ckpt,
            str(d.val_json),
            gt_dir=str(d.val_png),
            image_dir=str(d.val_images),
            pred_out=None,
            limit=self.preset.eval_images,
            device=self.device,
            progress=self.progress,
        )
        row["eval_seconds"] = time.perf_counter() - t0
        write_json_atomic(cell_dir / "pq.json", _jsonable(results), indent=1)
        row.update(metrics_row(results))
        return row


def _final_loss(metrics_csv: Path, last: int = 20) -> float | None:
    """Mean total loss of the last ``last`` iterations of a run (how far training got)."""
    if not metrics_csv.is_file():
        return None
    with open(metrics_csv, newline="") as fh:
        vals = [float(r["loss_total"]) for r in csv.DictReader(fh) if r.get("loss_total")]
    return sum(vals[-last:]) / len(vals[-last:]) if vals else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return plain(obj)


def coco_paths(coco_root: str | Path) -> dict[str, str]:
    """The six ``data.*`` paths of train2017 / val2017 in a COCO panoptic folder
    (:func:`~pointly.model.engine.data.coco_split_paths`: ``annotations/panoptic_{train,val}2017[.json]``,
    images in ``{train,val}2017/``)."""
    d = DataPaths.of_folder(coco_root, ("train2017", "val2017"))
    return {
        f"{split}_{key}": str(path)
        for split, paths in (("train", (d.train_json, d.train_png, d.train_images)), ("val", (d.val_json, d.val_png, d.val_images)))
        for key, path in zip(("json", "panoptic_dir", "image_dir"), paths)
    }  # fmt: skip
