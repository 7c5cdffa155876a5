"""Hand-made images with known colours and borders for the image-aware region tests."""

from __future__ import annotations

import numpy as np


def three_flat_regions() -> np.ndarray:
    """Left half red, right top green, right bottom blue (sharp borders), 96 × 128."""
    img = np.zeros((96, 128, 3), dtype=np.uint8)
    img[:, :64] = (200, 30, 30)
    img[:48, 64:] = (30, 200, 30)
    img[48:, 64:] = (30, 30, 200)
    return img


#: (x, y) points inside the red and the green region of :func:`three_flat_regions`; blue has none
RED_POINTS = np.array([[10, 10], [30, 50], [50, 80]])
GREEN_POINTS = np.array([[80, 10], [110, 30]])
