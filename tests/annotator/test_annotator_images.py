"""Image loading of the annotator: safe paths, EXIF, grey/RGBA/16-bit, broken and huge files."""

from __future__ import annotations

import os

import numpy as np
import pytest
from annotator_fixtures import make_images, make_scene
from PIL import Image

from pointly.annotator.images import ImageCatalog, ImageSkipped, load_rgb
from pointly.annotator.render import DisplayImage
from pointly.pointgen.base.errors import PointlyError


@pytest.fixture()
def folder(tmp_path):
    return make_images(tmp_path / "images", broken=True)


def test_catalog_lists_and_flags_broken_images(folder):
    cat = ImageCatalog(folder)
    names = [e.file_name for e in cat.entries]
    assert names == sorted(names) and "a_scene.png" in names
    problems = {e.file_name: e.problem for e in cat.entries if e.problem}
    assert set(problems) == {"d_notanimage.jpg"}  # header unreadable: flagged at listing
    with pytest.raises(ImageSkipped, match="unreadable"):
        cat.load("c_truncated.png")  # the header is fine, the pixels are cut off
    with pytest.raises(ImageSkipped):
        cat.load("d_notanimage.jpg")


def test_exif_orientation_grey_and_rgba(folder):
    cat = ImageCatalog(folder)
    e = cat.entry("g_exif.jpg")
    assert (e.width, e.height) == (240, 320)  # orientation 6: displayed upright, sides swapped
    rot = cat.load("g_exif.jpg")
    assert rot.shape == (320, 240, 3)
    # upright = the stored pixels rotated 90° clockwise
    stored = np.asarray(Image.open(folder / "g_exif.jpg").convert("RGB"))
    assert np.abs(rot.astype(int) - np.rot90(stored, k=-1).astype(int)).mean() < 1.0
    grey = cat.load("e_grey.png")
    assert grey.shape == (480, 640, 3) and (grey[..., 0] == grey[..., 1]).all()
    rgba = cat.load("f_rgba.png")
    src = np.asarray(make_scene(seed=4)).astype(float)
    expect = np.round(src * 128 / 255 + 128 * (1 - 128 / 255))  # alpha 128 over mid grey
    assert rgba.shape == (480, 640, 3) and np.abs(rgba - expect).max() <= 1


def test_16bit_grey_is_scaled(tmp_path):
    arr = np.arange(64 * 32, dtype=np.uint16).reshape(32, 64) * 30
    Image.fromarray(arr).save(tmp_path / "deep.png")
    rgb = load_rgb(tmp_path / "deep.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (32, 64, 3) and rgb.max() == 255


def test_huge_images_are_skipped(tmp_path):
    make_scene(200, 100).save(tmp_path / "x.png")
    cat = ImageCatalog(tmp_path, max_pixels=10_000)
    assert "too large" in cat.entries[0].problem
    with pytest.raises(ImageSkipped, match="too large"):
        cat.load("x.png")


def test_only_catalog_names_resolve(folder, tmp_path):
    (tmp_path / "secret.png").write_bytes((folder / "a_scene.png").read_bytes())
    os.symlink(tmp_path / "secret.png", folder / "z_link.png")  # a symlink leading outside
    cat = ImageCatalog(folder)
    assert "z_link.png" not in cat
    for bad in [
        "../secret.png",
        str(tmp_path / "secret.png"),
        "z_link.png",
        "images/../../secret.png",
        "",
        "a_scene.png/..",
        "%2e%2e/secret.png",
    ]:
        with pytest.raises(PointlyError):
            cat.resolve(bad)
    assert cat.resolve("a_scene.png") == folder.resolve() / "a_scene.png"


def test_empty_or_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(PointlyError, match="not found"):
        ImageCatalog(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PointlyError, match="no images"):
        ImageCatalog(tmp_path / "empty")


@pytest.mark.parametrize("w,h", [(640, 480), (100, 60), (3000, 2000)])
def test_display_mapping_round_trips_every_pixel_centre(w, h):
    d = DisplayImage.from_rgb(np.zeros((h, w, 3), np.uint8))
    dh, dw = d.rgb.shape[:2]
    assert max(dh, dw) <= 1600
    xs = np.linspace(0, w - 1, 37).astype(int)
    for x in xs:
        xd, yd = d.to_display(int(x), int(x) % h)
        # Gradio reports the rounded display pixel; mapping back gives the original pixel
        assert d.to_original(round(xd), round(yd)) == (int(x), int(x) % h) or d.scale < 1
        if d.scale < 1:  # a display pixel covers 1/scale originals: within that tolerance
            xo, yo = d.to_original(round(xd), round(yd))
            assert abs(xo - x) <= 1 / d.scale and abs(yo - int(x) % h) <= 1 / d.scale
