"""Appearance of the synthetic dataset: per-class colour palettes and textures.

Every class has a palette (ranges of hue, saturation and value, drawn per instance or per
region) and a texture family, so class identity is learnable from appearance while no two
instances look exactly alike. Stuff textures are full-image float RGB arrays in [0, 1] that the
generator composites through the region masks; thing textures likewise, composited through the
visible part of each instance.
"""

from __future__ import annotations

import colorsys

import numpy as np
from scipy.ndimage import gaussian_filter

#: name -> (hue range in degrees, saturation range, value range); hue ranges may wrap below 0
PALETTES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    # things: saturated colours, one hue family per class
    "disc": ((22, 38), (0.75, 0.95), (0.85, 1.0)),  # orange
    "rectangle": ((270, 290), (0.55, 0.8), (0.55, 0.8)),  # purple
    "triangle": ((-8, 8), (0.75, 0.95), (0.7, 0.9)),  # red
    "ring": ((50, 60), (0.75, 0.95), (0.85, 1.0)),  # yellow
    "star": ((320, 335), (0.5, 0.75), (0.85, 1.0)),  # pink
    "cshape": ((165, 180), (0.6, 0.9), (0.45, 0.65)),  # dark teal
    # stuff: the muted colours of a landscape
    "sky": ((195, 215), (0.25, 0.5), (0.85, 0.98)),
    "grass": ((85, 125), (0.5, 0.8), (0.35, 0.6)),
    "water": ((205, 230), (0.6, 0.85), (0.3, 0.5)),
    "wall": ((20, 40), (0.05, 0.2), (0.55, 0.75)),
}


def palette_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    """A random RGB colour (floats in [0, 1]) from the palette of class ``name``."""
    (h0, h1), (s0, s1), (v0, v1) = PALETTES[name]
    h = (rng.uniform(h0, h1) % 360) / 360.0
    return np.array(colorsys.hsv_to_rgb(h, rng.uniform(s0, s1), rng.uniform(v0, v1)))


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float | tuple) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to zero mean and unit standard deviation."""
    n = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (n - n.mean()) / (n.std() + 1e-12)


def stuff_texture(rng: np.random.Generator, name: str, height: int, width: int) -> np.ndarray:
    """A full ``height × width × 3`` texture of stuff class ``name``."""
    base = palette_colour(rng, name)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    scale = height / 128.0
    if name == "sky":  # vertical gradient and soft clouds
        img = base * (1.05 - 0.15 * ys / height)[..., None]
        cloud = np.clip(smooth_noise(rng, (height, width), 8 * scale) * 0.5, 0, 1) ** 1.5
        img = img * (1 - 0.6 * cloud[..., None]) + 0.6 * cloud[..., None]
    elif name == "grass":  # fine noise elongated vertically: blades
        blades = smooth_noise(rng, (height, width), (2.0 * scale, 0.5))
        img = base * (1 + 0.22 * blades)[..., None]
    elif name == "water":  # horizontal waves with a wobble
        period = rng.uniform(5, 9) * scale
        wobble = smooth_noise(rng, (height, width), 6 * scale)
        waves = np.sin(2 * np.pi * (ys / period + 0.25 * wobble + rng.uniform()))
        img = base * (1 + 0.12 * waves)[..., None] + 0.06 * np.clip(waves, 0.7, 1)[..., None]
    elif name == "wall":  # bricks with mortar lines, per-brick shade
        bh, bw = rng.uniform(6, 9) * scale, rng.uniform(12, 18) * scale
        oy, ox = rng.uniform(0, bh), rng.uniform(0, bw)
        row = np.floor((ys + oy) / bh)
        colpos = xs + ox + (row % 2) * bw / 2  # every other row shifted by half a brick
        col = np.floor(colpos / bw)
        shade = np.sin(row * 12.9898 + col * 78.233) * 0.5 + 0.5  # a fixed hash per brick
        img = base * (0.9 + 0.2 * shade)[..., None]
        mortar = (np.mod(ys + oy, bh) < 1.0) | (np.mod(colpos, bw) < 1.0)
        img = np.where(mortar[..., None], base * 0.6, img)
    else:
        raise ValueError(f"unknown stuff class {name!r}")
    return np.clip(img, 0, 1)


def thing_texture(
    rng: np.random.Generator, name: str, height: int, width: int, cx: float, cy: float, size: float
) -> np.ndarray:
    """A full-image texture for one instance of thing class ``name`` centred at ``(cx, cy)``.

    The base colour comes from the class palette; the pattern (flat, stripes, spots or a shading
    gradient) is drawn per instance, so the pattern carries no class information.
    """
    base = palette_colour(rng, name)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64) + 0.5
    kind = rng.integers(4)
    if kind == 0:  # flat
        mod = np.zeros((height, width))
    elif kind == 1:  # stripes at a random angle
        th = rng.uniform(0, np.pi)
        period = rng.uniform(3.5, 7.0)
        mod = 0.18 * np.sign(np.sin(2 * np.pi * ((xs - cx) * np.cos(th) + (ys - cy) * np.sin(th)) / period))
    elif kind == 2:  # spots
        spots = smooth_noise(rng, (height, width), 1.2) > 1.0
        mod = np.where(spots, -0.22, 0.0)
    else:  # directional shading, as if lit from one side
        th = rng.uniform(0, 2 * np.pi)
        mod = 0.25 * np.clip(((xs - cx) * np.cos(th) + (ys - cy) * np.sin(th)) / max(size, 1.0), -1, 1)
    return np.clip(base * (1 + mod)[..., None], 0, 1)
