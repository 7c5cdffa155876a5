"""Drawing the canvas: the image, the target preview, every point and box coloured by segment.

A point in its segment (label 1) is a filled dot; a point NOT in its segment (label 0) is a hollow
ring of the segment's colour, the image visible through it. A thing's drawn box is a rectangle
in the segment's colour (thicker for the current segment); the first corner of a box being drawn
is a small cross.

Rendering is on the click path, so it is kept cheap: the upright RGB image is decoded and scaled
to the display size once per image (:class:`DisplayImage`), the target preview is cached per
state version, and the points are drawn with OpenCV (anti-aliased) on a copy and written as a
JPEG without chroma subsampling (:func:`write_jpeg`).
"""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

#: largest side of the displayed canvas; larger images are scaled down for display only
DISPLAY_MAX_SIDE = 1600
#: smaller images are enlarged by an integer factor (nearest neighbour) up to this long side
DISPLAY_MIN_SIDE = 768


def segment_color(k: int) -> tuple[int, int, int]:
    """A distinct RGB colour for the k-th segment of an image (golden-ratio hue steps)."""
    h = (0.07 + k * 0.618033988749895) % 1.0
    s = 0.85 if k % 2 == 0 else 0.65
    r, g, b = colorsys.hsv_to_rgb(h, s, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


@dataclass
class DisplayImage:
    """An image prepared for display: ``rgb`` at ``scale`` × the original size."""

    rgb: np.ndarray
    width: int
    height: int
    scale: float

    @classmethod
    def from_rgb(
        cls, rgb: np.ndarray, max_side: int = DISPLAY_MAX_SIDE, min_side: int = DISPLAY_MIN_SIDE
    ) -> DisplayImage:
        h, w = rgb.shape[:2]
        scale = min(1.0, max_side / max(h, w))
        if scale < 1.0:
            rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        elif max(h, w) * 2 <= min_side:  # small image: whole-pixel blocks, exact click mapping
            scale = float(min_side // max(h, w))
            rgb = np.repeat(np.repeat(rgb, int(scale), axis=0), int(scale), axis=1)
        return cls(np.ascontiguousarray(rgb), w, h, scale)

    def to_original(self, xd: float, yd: float) -> tuple[int, int]:
        """Original pixel indices of the display pixel (xd, yd) (its centre, floored, clamped)."""
        x = math.floor((xd + 0.5) / self.scale)
        y = math.floor((yd + 0.5) / self.scale)
        return min(max(x, 0), self.width - 1), min(max(y, 0), self.height - 1)

    def to_display(self, x: int, y: int) -> tuple[float, float]:
        """Display position of the centre of original pixel (x, y)."""
        return (x + 0.5) * self.scale - 0.5, (y + 0.5) * self.scale - 0.5


def point_radius(display: DisplayImage) -> int:
    return max(4, round(min(display.rgb.shape[:2]) / 110))


def box_corners(display: DisplayImage, bbox: list) -> tuple[tuple[int, int], tuple[int, int]]:
    """Display pixels of the outer edge of an original-pixel box ``[x, y, w, h]``."""
    x, y, w, h = bbox
    return (
        (math.floor(x * display.scale), math.floor(y * display.scale)),
        (math.ceil((x + w) * display.scale) - 1, math.ceil((y + h) * display.scale) - 1),
    )


def render(
    display: DisplayImage,
    segments: list,
    current: str | None,
    overlay: np.ndarray | None = None,
    corner: tuple[int, int] | None = None,
) -> np.ndarray:
    """The canvas as an RGB array: image, optional translucent ``overlay`` (RGBA, display size),
    then the boxes and points of ``segments`` (objects with ``sid``, ``bbox`` and ``points`` of
    ``x``/``y``/``label``) and the pending box ``corner`` (original pixels)."""
    canvas = display.rgb.copy()
    if overlay is not None:
        alpha = overlay[..., 3:4].astype(np.float32) / 255.0
        canvas = (canvas * (1 - alpha) + overlay[..., :3] * alpha).astype(np.uint8)
    r = point_radius(display)
    shift = 4  # sub-pixel drawing precision of cv2 (1/16 px)
    ring = max(2, r // 3)  # width of the ring of a point not in its segment
    for k, seg in enumerate(segments):
        if seg.bbox is not None:
            a, b = box_corners(display, seg.bbox)
            cv2.rectangle(canvas, a, b, (0, 0, 0), 5 if seg.sid == current else 4)
            cv2.rectangle(canvas, a, b, segment_color(k), 3 if seg.sid == current else 2)
    for k, seg in enumerate(segments):
        color = segment_color(k)
        is_current = seg.sid == current
        for p in seg.points:
            xd, yd = display.to_display(p.x, p.y)
            c = (round(xd * 16), round(yd * 16))
            if is_current:  # a white ring around (a point not in the segment is drawn larger)
                halo = (r + 3 if p.label else r + ring + 4) * 16
                cv2.circle(canvas, c, halo, (255, 255, 255), -1 if p.label else 3, cv2.LINE_AA, shift)
                cv2.circle(canvas, c, halo, (0, 0, 0), 1, cv2.LINE_AA, shift)
            if p.label:
                cv2.circle(canvas, c, r * 16, color, -1, cv2.LINE_AA, shift)
                cv2.circle(canvas, c, r * 16, (0, 0, 0), 1, cv2.LINE_AA, shift)
            else:  # hollow: the image shows through, so it cannot be mistaken for a point inside
                cv2.circle(canvas, c, (r + 1) * 16 + 8, (0, 0, 0), ring + 2, cv2.LINE_AA, shift)
                cv2.circle(canvas, c, (r + 1) * 16 + 8, color, ring, cv2.LINE_AA, shift)
    if corner is not None:
        xd, yd = display.to_display(*corner)
        c, arm = (round(xd), round(yd)), r + 4
        for color, width in (((0, 0, 0), 4), ((255, 255, 255), 2)):
            cv2.line(canvas, (c[0] - arm, c[1]), (c[0] + arm, c[1]), color, width)
            cv2.line(canvas, (c[0], c[1] - arm), (c[0], c[1] + arm), color, width)
    return canvas


def overlay_from_masks(
    display: DisplayImage, masks: list[tuple[int, np.ndarray]], ignore: np.ndarray | None = None, alpha: int = 110
) -> np.ndarray:
    """An RGBA overlay at display size: mask k in ``segment_color(k)``, ``ignore`` hatched grey.

    ``masks`` holds ``(segment index, bool mask at original size)``.
    """
    h, w = display.rgb.shape[:2]
    out = np.zeros((h, w, 4), np.uint8)

    def fit(m: np.ndarray) -> np.ndarray:
        if m.shape != (h, w):
            m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        return m

    if ignore is not None and ignore.any():
        ig = fit(ignore)
        yy, xx = np.mgrid[0:h, 0:w]
        hatch = ig & (((xx + yy) // 6) % 2 == 0)
        out[hatch] = (90, 90, 90, alpha)
    for k, m in masks:
        m = fit(m)
        out[m] = (*segment_color(k), alpha)
        edge = m & ~cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        out[edge] = (*segment_color(k), 255)
    return out


def write_jpeg(rgb: np.ndarray, path: str | Path, quality: int = 92) -> Path:
    """Write an RGB array as a JPEG (no chroma subsampling, so coloured dots stay crisp).

    JPEG rather than PNG because it is on the click path: it encodes several times faster than
    PNG even at compression level 1 (cv2), and the smaller file also loads faster in the browser.
    """
    params = [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    if hasattr(cv2, "IMWRITE_JPEG_SAMPLING_FACTOR"):
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 array
        raise RuntimeError("JPEG encoding failed")
    path = Path(path)
    path.write_bytes(buf.tobytes())
    return path
