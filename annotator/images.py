"""The image folder of an annotation project: listing, safe paths and robust loading.

Only files *inside* ``IMAGES_DIR`` are ever opened: every name that arrives from a browser or an
API call goes through :meth:`ImageCatalog.resolve`, which accepts only names of the catalog
(never a path built from user input), so ``../`` or absolute paths cannot reach other files.

Loading is defensive because a real folder holds anything: unreadable or truncated files and
images above a pixel limit raise :class:`ImageSkipped` (the app shows the reason and moves on);
EXIF orientation is applied (the points JSON refers to the image as displayed, upright); grey,
palette, 16-bit and RGBA images are converted to 8-bit RGB (alpha composited over mid grey).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pointly.pointgen.base.errors import PointlyError

log = logging.getLogger(__name__)

#: file endings listed as images
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
#: default largest image (pixels) the annotator opens; larger ones are skipped with a message
DEFAULT_MAX_PIXELS = 50_000_000
#: EXIF orientations that swap width and height
_TRANSPOSING = {5, 6, 7, 8}


class ImageSkipped(Exception):
    """An image that cannot be annotated (unreadable, truncated, too large); ``str`` says why."""


@dataclass(frozen=True)
class ImageEntry:
    """One image of the catalog: its stable ``file_name`` (relative, '/'-separated) and size.

    ``width``/``height`` are the upright size (after EXIF orientation); ``problem`` is set when
    the header could not be read, in which case the image is skipped.
    """

    file_name: str
    width: int
    height: int
    problem: str | None = None


def _upright_size(path: Path, max_pixels: int) -> tuple[int, int]:
    """Width and height after EXIF orientation, reading only the header."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            try:
                orientation = im.getexif().get(0x0112, 1)
            except Exception:  # a broken EXIF block is not a reason to skip the image
                orientation = 1
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageSkipped(f"unreadable image ({exc.__class__.__name__}: {exc})") from None
    if w * h > max_pixels:
        raise ImageSkipped(f"too large ({w}x{h} = {w * h / 1e6:.0f} MP > {max_pixels / 1e6:.0f} MP limit)")
    return (h, w) if orientation in _TRANSPOSING else (w, h)


class ImageCatalog:
    """The images of ``root`` (recursively, sorted by relative name) and how to open them."""

    def __init__(self, root: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        root = Path(root)
        if not root.is_dir():
            raise PointlyError(
                "images folder not found", file=root, fix="pass an existing folder of images as IMAGES_DIR"
            )
        self.root = root.resolve()
        self.max_pixels = max_pixels
        entries: list[ImageEntry] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith(".") or not name.lower().endswith(IMAGE_SUFFIXES):
                    continue
                path = Path(dirpath) / name
                if not self._inside(path):  # a symlink leading out of IMAGES_DIR
                    log.warning("ignoring %s: it points outside %s", path, self.root)
                    continue
                rel = path.relative_to(self.root).as_posix()
                try:
                    w, h = _upright_size(path, max_pixels)
                    entries.append(ImageEntry(rel, w, h))
                except ImageSkipped as exc:
                    entries.append(ImageEntry(rel, 0, 0, str(exc)))
        entries.sort(key=lambda e: e.file_name)
        if not entries:
            raise PointlyError(
                "no images found", file=root, fix=f"put image files ({', '.join(IMAGE_SUFFIXES)}) in the folder"
            )
        self.entries = entries
        self._by_name = {e.file_name: e for e in entries}

    def _inside(self, path: Path) -> bool:
        try:
            path.resolve().relative_to(self.root)
            return True
        except (ValueError, OSError):
            return False

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._by_name

    def entry(self, name: str) -> ImageEntry:
        """The catalog entry of ``name``; :class:`PointlyError` for any name not in the catalog."""
        if name not in self._by_name:
            raise PointlyError(
                f"no image named {name!r} in the project",
                file=self.root,
                fix="use an image name from the project's list",
            )
        return self._by_name[name]

    def resolve(self, name: str) -> Path:
        """The file of a catalog image; refuses names outside the catalog and escaping symlinks."""
        self.entry(name)  # only names we listed ourselves, never a path made from user input
        path = self.root / name
        if not self._inside(path):
            raise PointlyError(
                f"image {name!r} resolves outside the images folder", file=self.root, fix="remove the symlink"
            )
        return path

    def load(self, name: str) -> np.ndarray:
        """The upright RGB uint8 array (H, W, 3) of a catalog image, or :class:`ImageSkipped`."""
        entry = self.entry(name)
        if entry.problem:
            raise ImageSkipped(entry.problem)
        return load_rgb(self.resolve(name), self.max_pixels)


def load_rgb(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` fully to upright 8-bit RGB; :class:`ImageSkipped` for any failure."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels:
                raise ImageSkipped(f"too large ({im.width}x{im.height} > {max_pixels / 1e6:.0f} MP limit)")
            im.load()  # decodes everything: a truncated file fails here, not later
            im = ImageOps.exif_transpose(im)
            return np.asarray(to_rgb(im))
    except ImageSkipped:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageSkipped(f"unreadable image ({exc.__class__.__name__}: {exc})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB; transparency is composited over mid grey."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 1.0
        arr = np.clip(arr / (hi if hi > 0 else 1.0) * 255.0, 0, 255).astype(np.uint8)
        im = Image.fromarray(arr, "L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(background, im)
    return im.convert("RGB")


def coco_image_ids(catalog: ImageCatalog, images_json: str | Path) -> dict[str, int]:
    """Each catalog image's id in a COCO JSON (``--images-json``): matched by file name (or a
    unique base name), its size checked against the COCO record (unreadable images: by name only).

    An image the file lacks, a size that disagrees, or two images matching one record is one
    :class:`PointlyError` line, so that the project's ids surely are that file's.
    """
    from pointly.pointgen.interop.common import load_reference, resolve_image

    ref = load_reference(images_json)
    ids: dict[str, int] = {}
    owner: dict[int, str] = {}
    for e in catalog.entries:
        known = e.problem is None
        rec = resolve_image(
            e.file_name,
            e.width if known else None,
            e.height if known else None,
            ref,
            file=images_json,
            record="--images-json",
        )
        if rec["id"] in owner:
            raise PointlyError(
                f"images {owner[rec['id']]!r} and {e.file_name!r} both match image id {rec['id']}",
                file=images_json,
                fix="give the images distinct names or pass another COCO JSON",
            )
        owner[rec["id"]] = e.file_name
        ids[e.file_name] = rec["id"]
    return ids
