"""Preview of an image's targets: image, shapes in category colours, ignore in grey, points, centres.

One RGB picture per image, for eyes (``pointly targets --preview-images``): every segment's
final mask is tinted with its category colour and outlined; ignored pixels are washed out to
grey; each point is a small dot in its segment's colour with a dark rim; each simulated centre is
a white cross. Drawing uses OpenCV (anti-aliasing off, so colours stay exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from pointly.pointgen.targets.build import ImageTargets


def category_colour(category: Any, category_id: int) -> tuple[int, int, int]:
    """The category's COCO panoptic colour, or a fixed colour derived from its id."""
    colour = getattr(category, "color", None) if category is not None else None
    if colour is None and isinstance(category, Mapping):
        colour = category.get("color")
    if colour is not None:
        return tuple(int(c) for c in colour)  # type: ignore[return-value]
    rng = np.random.default_rng(int(category_id) * 7919 + 17)
    return tuple(int(v) for v in rng.integers(60, 256, 3))  # type: ignore[return-value]


def render_targets(
    targets: ImageTargets,
    annotations: Sequence[Mapping],
    categories: Mapping[int, Any],
    image: np.ndarray | None = None,
    *,
    alpha: float = 0.5,
    scale: int = 1,
) -> np.ndarray:
    """``H × W × 3`` uint8 RGB preview of full-size ``targets`` over ``image`` (RGB, optional)."""
    H, W = targets.shape
    base = np.full((H, W, 3), 40, np.uint8) if image is None else np.ascontiguousarray(image[..., :3]).astype(np.uint8)
    if base.shape[:2] != (H, W):
        base = cv2.resize(base, (W, H), interpolation=cv2.INTER_AREA)
    out = base.astype(np.float32)
    colours = np.zeros((len(targets.segments) + 1, 3), np.float32)
    for k, s in enumerate(targets.segments, start=1):
        colours[k] = category_colour(categories.get(s.category_id), s.category_id)
    owned = targets.owner > 0
    out[owned] = (1 - alpha) * out[owned] + alpha * colours[targets.owner[owned]]
    ign = targets.ignore
    grey = out[ign].mean(axis=1, keepdims=True)
    out[ign] = 0.35 * grey + 0.65 * 128.0
    out = np.clip(out, 0, 255).astype(np.uint8)
    if scale > 1:
        out = cv2.resize(out, (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
    for k, _s in enumerate(targets.segments, start=1):
        m = (targets.owner == k).astype(np.uint8)
        if scale > 1:
            m = cv2.resize(m, (W * scale, H * scale), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colours[k]), 1)
    by_id = {int(a.get("id", -1)): a for a in annotations}
    r = max(2, scale + 1)
    for k, s in enumerate(targets.segments, start=1):
        a = by_id.get(s.annotation_id)
        if a is None:
            continue
        col = tuple(int(c) for c in colours[k])
        for x, y in np.asarray(a["point_coords"], dtype=np.int64).reshape(-1, 2):
            p = (int((x + 0.5) * scale), int((y + 0.5) * scale))
            cv2.circle(out, p, r + 1, (0, 0, 0), -1)
            cv2.circle(out, p, r, col, -1)
        cx, cy = int(round((s.centre[0] + 0.5) * scale)), int(round((s.centre[1] + 0.5) * scale))
        d = r + 3
        cv2.line(out, (cx - d, cy), (cx + d, cy), (0, 0, 0), 3)
        cv2.line(out, (cx, cy - d), (cx, cy + d), (0, 0, 0), 3)
        cv2.line(out, (cx - d, cy), (cx + d, cy), (255, 255, 255), 1)
        cv2.line(out, (cx, cy - d), (cx, cy + d), (255, 255, 255), 1)
    return out


def png_bytes(rgb: np.ndarray) -> bytes:
    """PNG encoding of an RGB array (OpenCV, BGR on the wire)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()
