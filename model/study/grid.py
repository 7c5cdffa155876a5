"""The study's cells and grids, for both depths (``pointly study --depth targets|trained``).

A :class:`Cell` is one point of the grid: dataset, supervision (``points`` or ``full`` masks),
points per segment, shape, boundary share, dilation, sampling seed, concave ratio and the target
rules. The two depths share the cell, its id, the ``--grid`` syntax (:func:`parse_grid`) and the
sharding (:func:`parse_shard`, :func:`shard_cells`); only the defaults of the axes differ
(:data:`GRID_DEFAULTS`).

Dilation follows :func:`pointly.pointgen.targets.options.parse_dilation`, always relative to the
image's longer side, normalised to ``None`` (off), a radius (``0.02``) or a ``(lo, hi)`` range
drawn per sample (``(0.01, 0.03)``). In a grid, ``on`` (or ``1``) means the depth's default:
the trained study's training range :data:`DEFAULT_DILATION_RANGE` (0.01:0.03), the target
study's radius :data:`DEFAULT_DILATION` (0.02), the setting the target study chose.

Cell ids, e.g. ``synthetic-P20-concave-r030-b000-d000-s0``: dataset, points, shape, concave ratio
and boundary share in 1/100, dilation in 1/1000 (``d000`` off, ``d020`` radius 0.02,
``d010-030`` range 0.01–0.03), seed, and ``-<rules>`` for rule sets other than ``corrected``;
the full-mask reference is ``synthetic-full-s0``. Ids are always recomputed from a row's axes
(:meth:`Cell.from_row`), never trusted from a file.

One module, though long: the cell, its id, its dilation forms and the grid parser are one
vocabulary that must change together (an id that stops matching its parser breaks resuming).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.options import (
    DEFAULT_DILATION,
    DEFAULT_DILATION_RANGE,
    TARGET_SHAPES,
    TargetOptions,
    parse_dilation,
)

DEPTHS = ("targets", "trained")
SUPERVISIONS = ("points", "full")
#: the presets' shape axis (the paper's Table 13); a grid may also name the image-aware ``watershed``
SHAPES = ("convex", "concave")
DATASETS = ("coco", "synthetic")
TABLE13_POINTS = (5, 10, 20, 30, 50, 100)
TABLE14_SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
DEFAULT_CONCAVE_RATIO = TargetOptions.concave_ratio
#: target rules: ``corrected`` = TargetOptions' defaults (docs/point-supervision.md); ``baseline`` =
#: the first design (one hull per segment, a pixel claimed twice ignored, size from the shape's box).
#: A trained study given its own rule fields (a dict) names them ``custom`` (the fields are in study.json).
RULES: dict[str, dict[str, Any]] = {
    "corrected": {},
    "baseline": {"parts": "hull", "overlap": "exclusive", "size_correction": False},
}
CUSTOM_RULES = "custom"
#: what ``dilations=on`` means in each depth
DEPTH_DILATION: dict[str, float | tuple[float, float]] = {
    "targets": DEFAULT_DILATION,
    "trained": tuple(DEFAULT_DILATION_RANGE),
}

Dilation = float | tuple[float, float] | None


# --------------------------------------------------------------------------- dilation
def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def normalise_dilation(value: Any, on: Dilation = None) -> Dilation:
    """``None`` (off), a radius or a ``(lo, hi)`` range, relative to the longer image side.

    Accepts what a grid, a row or :class:`TargetOptions` holds: ``None``/``off``/``0``/``False``,
    ``on``/``True`` (= ``on``, the depth's default), a number, ``"0.02"``, ``"0.01:0.03"``, a pair.
    Pixel dilations (``8px``) are refused: a study cell's targets do not depend on the image size.
    """
    if isinstance(value, np.bool_):
        value = bool(value)
    if _nan(value) or value is False:
        return None
    if value is True:
        if on is None:
            raise PointlyError("dilation 'on' has no default here", fix="give a radius or a range, e.g. 0.02")
        return normalise_dilation(on)
    if isinstance(value, str):
        t = value.strip().lower()
        if t in ("on", "1", "true", "yes", "default"):
            return normalise_dilation(True, on)
        if t in ("false",):
            return None
        parsed, units = parse_dilation(t)
        if units != "relative":
            raise PointlyError(
                f"a study cell's dilation is relative to the longer image side, not {value!r}",
                record="--grid",
                fix="write a radius (0.02) or a range (0.01:0.03)",
            )
        return normalise_dilation(parsed)
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise PointlyError(f"a dilation range has two numbers, got {value!r}")
        lo, hi = (float(v) for v in value)
        if not 0.0 <= lo <= hi:
            raise PointlyError(f"bad dilation range {value!r}", fix="need 0 <= lo <= hi")
        return None if hi == 0 else (lo, hi)
    r = float(value)
    if r < 0:
        raise PointlyError(f"negative dilation {value!r}")
    return None if r == 0 else r


def dilation_text(d: Dilation) -> str:
    """The row form: ``off``, ``0.02`` or ``0.01:0.03`` (readable by :func:`parse_dilation`)."""
    if d is None:
        return "off"
    if isinstance(d, tuple):
        return f"{d[0]:g}:{d[1]:g}"
    return f"{d:g}"


def _dilation_id(d: Dilation) -> str:
    if d is None:
        return "d000"
    if isinstance(d, tuple):
        return f"d{round(d[0] * 1000):03d}-{round(d[1] * 1000):03d}"
    return f"d{round(d * 1000):03d}"


def rules_name(target_rules: Any) -> str:
    """The rule-set name of a trained study's ``target_rules`` setting (a name, or rule fields)."""
    if target_rules is None:
        return "corrected"
    if isinstance(target_rules, str):
        return target_rules
    for name, fields in RULES.items():
        if dict(target_rules) == fields:
            return name
    return CUSTOM_RULES


# --------------------------------------------------------------------------- the cell
@dataclass(frozen=True)
class Cell:
    """One grid cell of either depth. Full-mask cells (``supervision="full"``) have no point axes."""

    dataset: str = "synthetic"
    supervision: str = "points"
    points: int | None = None
    shape: str | None = None
    boundary_share: float = 0.0
    dilation: Dilation = None
    seed: int = 0
    concave_ratio: float | None = DEFAULT_CONCAVE_RATIO
    rules: str = "corrected"

    def __post_init__(self) -> None:
        put = object.__setattr__
        if self.supervision not in SUPERVISIONS:
            raise PointlyError(f"unknown supervision {self.supervision!r}", fix="use points or full")
        if not re.fullmatch(r"[A-Za-z0-9_]+", str(self.dataset)):
            raise PointlyError(f"bad dataset name {self.dataset!r}", fix="letters, digits and _ only")
        put(self, "seed", int(self.seed))
        if self.supervision == "full":
            for name, value in (
                ("points", None),
                ("shape", None),
                ("boundary_share", 0.0),
                ("dilation", None),
                ("concave_ratio", None),
                ("rules", "corrected"),
            ):
                put(self, name, value)
            return
        if isinstance(self.points, bool) or not isinstance(self.points, int) or self.points < 1:
            raise PointlyError(f"points per segment must be a positive integer, got {self.points!r}")
        if self.shape not in TARGET_SHAPES:
            raise PointlyError(f"unknown shape {self.shape!r}", fix=f"use one of {', '.join(TARGET_SHAPES)}")
        share = float(self.boundary_share)
        if not 0.0 <= share <= 1.0:
            raise PointlyError(f"boundary share {share} outside [0, 1]")
        put(self, "boundary_share", share)
        put(self, "dilation", normalise_dilation(self.dilation))
        ratio = DEFAULT_CONCAVE_RATIO if self.concave_ratio is None else float(self.concave_ratio)
        put(self, "concave_ratio", ratio if self.shape == "concave" else 1.0)  # other shapes have none
        if self.rules not in RULES and self.rules != CUSTOM_RULES:
            raise PointlyError(f"unknown target rules {self.rules!r}", fix=f"use one of {', '.join(RULES)}")

    @property
    def cell_id(self) -> str:
        """A stable, file-name-safe id (module docstring), e.g. ``coco-P20-concave-r030-b050-d020-s3``."""
        if self.supervision == "full":
            return f"{self.dataset}-full-s{self.seed}"
        return (
            f"{self.dataset}-P{self.points}-{self.shape}-r{round(self.concave_ratio * 100):03d}"
            f"-b{round(self.boundary_share * 100):03d}-{_dilation_id(self.dilation)}-s{self.seed}"
            + ("" if self.rules == "corrected" else f"-{self.rules}")
        )

    @property
    def dilated(self) -> bool:
        return self.dilation is not None

    def axes(self) -> dict[str, Any]:
        """The cell's columns of a result row."""
        full = self.supervision == "full"
        return {
            "dataset": self.dataset,
            "supervision": self.supervision,
            "points": self.points,
            "shape": self.shape,
            "concave_ratio": self.concave_ratio,
            "boundary_share": None if full else self.boundary_share,
            "dilation": dilation_text(self.dilation),
            "seed": self.seed,
            "rules": self.rules,
        }

    def target_options(self, custom_rules: Mapping[str, Any] | None = None) -> TargetOptions:
        """The :class:`TargetOptions` of a points cell (``custom_rules``: the fields of ``custom``)."""
        if self.supervision != "points":
            raise PointlyError("a full-mask cell has no point targets")
        if self.rules == CUSTOM_RULES:
            if custom_rules is None:
                raise PointlyError("the cell's custom target rules are not known", fix="run it with its study.json")
            rules = dict(custom_rules)
        else:
            rules = RULES[self.rules]
        return TargetOptions(
            shape=self.shape,
            concave_ratio=self.concave_ratio,
            dilation=self.dilation,
            dilation_units="relative",
            **rules,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> Cell:
        """The cell of a row (CSV strings, JSON values or a frame's row), old formats included.

        ``defaults`` fill what old rows lack: ``dataset``, ``rules`` (rows written before the rules
        were an axis: ``baseline``), ``dilation_on`` (what an old trained row's ``dilation=True``
        meant: study.json's range) and ``concave_ratio``.
        """
        d = dict(defaults or {})

        def get(key: str, default: Any = None) -> Any:
            v = row.get(key)
            return default if _nan(v) or v == "" else v

        supervision = str(get("supervision", "points"))
        dataset = str(get("dataset", d.get("dataset", "synthetic")))
        seed = int(float(get("seed", 0)))
        if supervision == "full":
            return cls(dataset, "full", seed=seed)
        radius = get("dilation_radius")
        raw = get("dilation")
        if radius is not None:  # an old target-study row: a radius, 0 = off
            dilation = normalise_dilation(float(radius))
        elif isinstance(raw, (bool, np.bool_)) or (isinstance(raw, str) and raw.strip().lower() in ("true", "false")):
            on = raw.strip().lower() == "true" if isinstance(raw, str) else bool(raw)  # an old trained row
            dilation = normalise_dilation(d.get("dilation_on", DEPTH_DILATION["trained"])) if on else None
        else:
            dilation = normalise_dilation(raw)
        return cls(
            dataset=dataset,
            supervision="points",
            points=int(float(get("points"))),
            shape=str(get("shape")),
            boundary_share=float(get("boundary_share", 0.0)),
            dilation=dilation,
            seed=seed,
            concave_ratio=float(get("concave_ratio", d.get("concave_ratio", DEFAULT_CONCAVE_RATIO))),
            rules=str(get("rules", d.get("rules", "baseline"))),
        )


def unique_cells(cells: Iterable[Cell]) -> list[Cell]:
    """Drop repeated cells (same ``cell_id``), keeping the first; grids of different parts overlap."""
    seen, out = set(), []
    for c in cells:
        if c.cell_id not in seen:
            seen.add(c.cell_id)
            out.append(c)
    return out


# --------------------------------------------------------------------------- grids
@dataclass
class Grid:
    """A product of axes (``dilations`` as :func:`normalise_dilation` values), plus the full-mask
    reference per dataset and seed when ``full``."""

    datasets: tuple[str, ...] = ("synthetic",)
    points: tuple[int, ...] = TABLE13_POINTS
    shapes: tuple[str, ...] = SHAPES
    shares: tuple[float, ...] = (0.0,)
    dilations: tuple[Dilation, ...] = (None,)
    seeds: tuple[int, ...] = (0,)
    ratios: tuple[float, ...] = (DEFAULT_CONCAVE_RATIO,)
    rules: tuple[str, ...] = ("corrected",)
    full: bool = False

    def cells(self) -> list[Cell]:
        """Cells in a fixed order: per dataset, the cells of one simulation (points, share, seed)
        together, so that a shard reuses it; then the full-mask cells."""
        out = []
        for dataset in self.datasets:
            for p, b, s in itertools.product(self.points, self.shares, self.seeds):
                for shape in self.shapes:
                    ratios = self.ratios if shape == "concave" else (1.0,)
                    for r, dil, rules in itertools.product(ratios, self.dilations, self.rules):
                        out.append(Cell(dataset, "points", int(p), shape, float(b), dil, int(s), float(r), rules))
            if self.full:
                out += [Cell(dataset, "full", seed=int(s)) for s in self.seeds]
        return unique_cells(out)


#: the axes a grid leaves out, per depth (a trained study's preset sets its dataset and rules)
GRID_DEFAULTS: dict[str, dict[str, Any]] = {
    "targets": {
        "datasets": DATASETS,
        "points": TABLE13_POINTS,
        "shapes": SHAPES,
        "shares": TABLE14_SHARES,
        "dilations": (None, DEPTH_DILATION["targets"]),
        "seeds": (0, 1, 2, 3, 4),
        "ratios": (DEFAULT_CONCAVE_RATIO,),
        "rules": ("corrected",),
        "full": False,
    },
    "trained": {
        "datasets": ("synthetic",),
        "points": TABLE13_POINTS,
        "shapes": SHAPES,
        "shares": (0.0,),
        "dilations": (None,),
        "seeds": (0,),
        "ratios": (DEFAULT_CONCAVE_RATIO,),
        "rules": ("corrected",),
        "full": True,
    },
}

_ALIASES = {
    "dataset": "datasets",
    "point": "points",
    "shape": "shapes",
    "share": "shares",
    "boundary_share": "shares",
    "boundary_shares": "shares",
    "dilation": "dilations",
    "seed": "seeds",
    "ratio": "ratios",
    "concave_ratio": "ratios",
    "concave_ratios": "ratios",
    "rule": "rules",
}
GRID_KEYS = ("datasets", "points", "shapes", "shares", "dilations", "seeds", "ratios", "rules", "full")


def _onoff(v: str) -> bool:
    t = v.strip().lower()
    if t in ("1", "on", "true", "yes"):
        return True
    if t in ("0", "off", "false", "no"):
        return False
    raise ValueError(v)


def parse_grid(text: str, depth: str, defaults: Mapping[str, Any] | None = None) -> list[Cell]:
    """``--grid``: ``key=v1,v2;key=...`` with keys datasets, points, shapes, shares, dilations,
    seeds, ratios, rules, full (singular forms accepted). Missing keys take the depth's defaults
    (:data:`GRID_DEFAULTS`, updated by ``defaults``). ``dilations``: ``off``/``0``, ``on``/``1``
    (the depth's default, :data:`DEPTH_DILATION`), a radius (``0.02``) or a range (``0.01:0.03``).
    ``full=1`` adds the full-mask reference (trained depth only)."""
    if depth not in DEPTHS:
        raise PointlyError(f"unknown depth {depth!r}", fix="targets or trained")
    axes = {**GRID_DEFAULTS[depth], **(defaults or {})}
    on = DEPTH_DILATION[depth]
    conv = {
        "datasets": str,
        "points": int,
        "shapes": str,
        "shares": float,
        "dilations": lambda v: normalise_dilation(v, on),
        "seeds": int,
        "ratios": float,
        "rules": str,
        "full": _onoff,
    }
    seen: set[str] = set()
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        if "=" not in part:
            raise PointlyError(
                f"cannot read --grid part {part!r}",
                record="--grid",
                fix="write key=v1,v2;key=... with keys " + ", ".join(GRID_KEYS),
            )
        key, vals = (s.strip() for s in part.split("=", 1))
        key = _ALIASES.get(key, key)
        if key not in GRID_KEYS:
            raise PointlyError(f"unknown --grid key {key!r}", record="--grid", fix="keys: " + ", ".join(GRID_KEYS))
        if key in seen:
            raise PointlyError(f"--grid names {key} twice", record="--grid")
        seen.add(key)
        try:
            values = tuple(conv[key](v.strip()) for v in vals.split(",") if v.strip())
        except (ValueError, PointlyError):
            raise PointlyError(f"bad --grid values for {key}: {vals!r}", record="--grid") from None
        if not values:
            raise PointlyError(f"--grid gives no values for {key}", record="--grid")
        if key == "shapes" and any(v not in TARGET_SHAPES for v in values):
            raise PointlyError(f"unknown shape in {part!r}", record="--grid", fix=", ".join(TARGET_SHAPES))
        if key == "rules" and any(v not in RULES for v in values):
            raise PointlyError(f"unknown target rules in {part!r}", record="--grid", fix=", ".join(RULES))
        if key == "datasets" and any(v not in DATASETS for v in values):
            raise PointlyError(f"unknown dataset in {part!r}", record="--grid", fix=", ".join(DATASETS))
        if key == "full":
            if len(values) != 1:
                raise PointlyError("--grid full takes one value, 0 or 1", record="--grid")
            values = values[0]
        axes[key] = values
    if axes["full"] and depth == "targets":
        raise PointlyError(
            "the target study scores targets made from points; full masks have none",
            record="--grid",
            fix="drop full=1, or use --depth trained",
        )
    cells = Grid(**{k: axes[k] for k in GRID_KEYS}).cells()
    if not cells:
        raise PointlyError("the --grid is empty", record="--grid")
    return cells


# --------------------------------------------------------------------------- shards
def parse_shard(text: str | None) -> tuple[int, int]:
    """``--shard i/n`` with ``0 <= i < n`` into ``(i, n)``; ``None`` means ``(0, 1)``."""
    if text is None or str(text).strip() == "":
        return 0, 1
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise PointlyError(f"bad --shard {text!r}", fix="write --shard i/n, e.g. 0/4 for the first of 4") from None
    if n < 1 or not 0 <= i < n:
        raise PointlyError(f"bad --shard {text!r}: need 0 <= i < n", fix="e.g. --shard 0/2 and --shard 1/2")
    return i, n


def shard_cells(cells: Sequence[Cell], shard: tuple[int, int]) -> list[Cell]:
    """The cells of shard ``i`` of ``n``: grid positions ``i, i+n, i+2n, ...``."""
    i, n = shard
    return [c for k, c in enumerate(cells) if k % n == i]


__all__ = [
    "Cell",
    "Grid",
    "GRID_DEFAULTS",
    "GRID_KEYS",
    "DEPTH_DILATION",
    "RULES",
    "normalise_dilation",
    "dilation_text",
    "rules_name",
    "unique_cells",
    "parse_grid",
    "parse_shard",
    "shard_cells",
]
