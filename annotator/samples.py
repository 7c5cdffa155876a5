"""The bundled sample images of ``pointly annotate`` without arguments.

``data/samples/`` holds four 384×384 JPEG images drawn by the synthetic dataset generator
(:func:`pointly.data.synth.generate_image`, seeds ``[7, i]``); their categories are
``data/categories/synthetic.json``. :func:`make_samples` regenerates them byte for byte
(``python -m pointly.annotator.samples``).
"""

from __future__ import annotations

import io
import os
from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE_COUNT = 4
SAMPLE_SIZE = 384
SAMPLE_SEED = 7


def samples_dir() -> Path:
    """The folder of the bundled sample images."""
    return Path(str(resources.files("pointly.data").joinpath("samples")))


def default_project_dir(images_dir: str | Path | None = None) -> Path:
    """Where the no-argument mode keeps its project:
    ``$XDG_DATA_HOME/pointly/sample-project-<8 hex digits>``.

    The suffix is a hash of the samples folder's resolved path (``images_dir``, default
    :func:`samples_dir`): a project remembers the folder it annotates and refuses another one, so
    a second checkout or install of pointly gets its own sample project instead of an error.
    """
    import hashlib

    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    folder = Path(images_dir) if images_dir is not None else samples_dir()
    digest = hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:8]
    return Path(base) / "pointly" / f"sample-project-{digest}"


def make_samples(out_dir: str | Path) -> list[Path]:
    """Write the sample images (deterministic: same generator seeds, same JPEG settings)."""
    from PIL import Image

    from pointly.data.synth import generate_image
    from pointly.pointgen.base.files import write_bytes_atomic

    out = Path(out_dir)
    paths = []
    for i in range(SAMPLE_COUNT):
        img = generate_image(np.random.default_rng([SAMPLE_SEED, i]), size=SAMPLE_SIZE)
        buf = io.BytesIO()
        Image.fromarray(img.rgb).save(buf, "JPEG", quality=88)
        path = out / f"sample_{i + 1:02d}.jpg"
        write_bytes_atomic(path, buf.getvalue())
        paths.append(path)
    return paths


if __name__ == "__main__":  # pragma: no cover
    for p in make_samples(Path(__file__).resolve().parents[1] / "data" / "samples"):
        print(p)
