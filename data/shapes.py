"""Thing shapes of the synthetic dataset: exact pixel masks with analytic areas.

Each shape is drawn on the pixel grid by testing pixel *centres* (pixel ``(x, y)`` has its
centre at ``(x + 0.5, y + 0.5)``, pointly's convention), so the pixel count of an uncropped,
unoccluded shape approximates its analytic area up to a boundary term; tests use that.

Three shapes are convex (disc, rectangle, triangle) and three are not (ring, star, C-shape):
the convex hull of a ring, star or C covers much more than the shape, which is what the study of
convex-versus-concave point hulls needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from matplotlib.path import Path as MplPath

#: shape kinds in category order of ``data/categories/synthetic.json`` (ids 1..6)
SHAPES = ("disc", "rectangle", "triangle", "ring", "star", "cshape")
CONVEX = frozenset({"disc", "rectangle", "triangle"})


@dataclass
class Shape:
    """A placed shape: kind, centre (continuous pixel coordinates), size (outer radius, pixels),
    rotation (radians), kind-specific parameters, and its analytic area (pixels²).

    ``size`` is the radius of the smallest centred disc holding the shape for every kind (the
    half-diagonal of a rectangle, the outer radius of a ring or star), so sizes are comparable
    across kinds and the shape never leaves the square ``cx ± size, cy ± size``."""

    kind: str
    cx: float
    cy: float
    size: float
    angle: float
    params: dict = field(default_factory=dict)

    @property
    def area(self) -> float:
        """The area of the continuous shape (what an infinitely fine raster would count)."""
        s, p = self.size, self.params
        if self.kind == "disc":
            return math.pi * s * s
        if self.kind == "rectangle":
            a, b = self._half_sides()
            return 4.0 * a * b
        if self.kind in ("triangle", "star"):
            return _shoelace(self.vertices())
        if self.kind == "ring":
            return math.pi * s * s * (1.0 - p["inner"] ** 2)
        if self.kind == "cshape":
            return math.pi * s * s * (1.0 - p["inner"] ** 2) * (1.0 - p["gap"] / (2 * math.pi))
        raise ValueError(self.kind)

    def _half_sides(self) -> tuple[float, float]:
        """Half width and half height of a rectangle whose half-diagonal is ``size``."""
        asp = self.params["aspect"]
        a = self.size / math.sqrt(1.0 + asp * asp)
        return a, a * asp

    def vertices(self) -> np.ndarray:
        """Polygon vertices (x, y) of a triangle or star (N × 2)."""
        p = self.params
        if self.kind == "triangle":
            ang = self.angle + np.arange(3) * 2 * np.pi / 3 + np.asarray(p["jitter"])
            rad = self.size * np.asarray(p["radii"])
        elif self.kind == "star":
            k = p["points"]
            ang = self.angle + np.arange(2 * k) * np.pi / k
            rad = self.size * np.where(np.arange(2 * k) % 2 == 0, 1.0, p["inner"])
        else:
            raise ValueError(f"{self.kind} is not a polygon")
        return np.stack([self.cx + rad * np.cos(ang), self.cy + rad * np.sin(ang)], axis=1)

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "cx": round(self.cx, 4),
            "cy": round(self.cy, 4),
            "size": round(self.size, 4),
            "angle": round(self.angle, 6),
            "params": {
                k: (np.round(v, 6).tolist() if isinstance(v, (list, np.ndarray)) else v) for k, v in self.params.items()
            },
            "analytic_area": round(self.area, 3),
        }

    def mask(self, height: int, width: int) -> np.ndarray:
        """Boolean ``height × width`` mask of the pixels whose centres lie inside the shape."""
        out = np.zeros((height, width), dtype=bool)
        # only evaluate the pixels of the bounding square (the shape lies within radius `size`)
        x0, x1 = max(0, int(self.cx - self.size) - 1), min(width, int(self.cx + self.size) + 2)
        y0, y1 = max(0, int(self.cy - self.size) - 1), min(height, int(self.cy + self.size) + 2)
        if x0 >= x1 or y0 >= y1:
            return out
        ys, xs = np.mgrid[y0:y1, x0:x1]
        px, py = xs + 0.5 - self.cx, ys + 0.5 - self.cy
        k, s, p = self.kind, self.size, self.params
        if k in ("disc", "ring", "cshape"):
            d2 = px * px + py * py
            inside = d2 <= s * s
            if k != "disc":
                inside &= d2 > (s * p["inner"]) ** 2
            if k == "cshape":
                # remove the wedge of width `gap` centred on direction `angle`
                rel = np.angle(np.exp(1j * (np.arctan2(py, px) - self.angle)))
                inside &= np.abs(rel) > p["gap"] / 2
        elif k == "rectangle":
            c, si = math.cos(self.angle), math.sin(self.angle)
            u, v = c * px + si * py, -si * px + c * py
            a, b = self._half_sides()
            inside = (np.abs(u) <= a) & (np.abs(v) <= b)
        elif k in ("triangle", "star"):
            path = MplPath(self.vertices())
            pts = np.stack([xs.ravel() + 0.5, ys.ravel() + 0.5], axis=1)
            inside = path.contains_points(pts).reshape(xs.shape)
        else:
            raise ValueError(k)
        out[y0:y1, x0:x1] = inside
        return out


def _shoelace(v: np.ndarray) -> float:
    x, y = v[:, 0], v[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def random_shape(rng: np.random.Generator, kind: str, cx: float, cy: float, size: float) -> Shape:
    """A shape of ``kind`` at ``(cx, cy)`` with outer radius ``size`` and random proportions."""
    angle = float(rng.uniform(0, 2 * np.pi))
    if kind == "disc":
        params: dict = {}
    elif kind == "rectangle":
        params = {"aspect": float(rng.uniform(0.35, 1.0))}  # half-height / half-width
    elif kind == "triangle":
        params = {"jitter": rng.uniform(-0.25, 0.25, 3).tolist(), "radii": rng.uniform(0.85, 1.0, 3).tolist()}
    elif kind == "ring":
        params = {"inner": float(rng.uniform(0.45, 0.65))}
    elif kind == "star":
        params = {"points": int(rng.integers(5, 7)), "inner": float(rng.uniform(0.4, 0.55))}
    elif kind == "cshape":
        params = {"inner": float(rng.uniform(0.4, 0.6)), "gap": float(rng.uniform(np.pi / 3, np.pi * 0.6))}
    else:
        raise ValueError(f"unknown shape kind {kind!r}")
    return Shape(kind, float(cx), float(cy), float(size), angle, params)
