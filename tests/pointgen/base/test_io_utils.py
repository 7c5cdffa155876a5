"""Guarded output: locations checked before any work, atomic files, all-or-nothing folders,
plain-file permissions; the pixel budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import atomic_open, check_output, staged_folder, write_json_atomic


def test_atomic_write_replaces_and_keeps_umask_permissions(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"a": 1})
    assert target.read_text() == '{"a":1}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def _unwritable(tmp_path):
    """A folder nothing can be written into: read-only for a normal user; /sys for root."""
    if os.geteuid() == 0:
        return Path("/sys/pointly-test")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


def test_check_output_refuses_each_kind_of_bad_location(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    cases = [
        (dict(path=blocker / "out.json"), "is a file, so nothing can be written below it"),
        (dict(path=blocker / "deeper" / "out"), "is a file, so nothing can be written below it"),
        (dict(path=tmp_path), "is a folder, but a file is expected"),
        (dict(path=blocker, folder=True), "is a file, but a folder is expected"),
        (dict(path=_unwritable(tmp_path) / "new" / "out.json"), "cannot write in"),
    ]
    for kwargs, message in cases:
        with pytest.raises(PointlyError, match=message) as info:
            check_output(option="-o", **kwargs)
        assert "-o" in info.value.one_line()
    # fine: a new file in a new folder, an existing file (replaced later), a new or existing folder
    assert check_output(tmp_path / "a" / "b" / "out.json") == tmp_path / "a" / "b" / "out.json"
    assert check_output(blocker) == blocker
    assert check_output(tmp_path / "new", folder=True) and check_output(tmp_path, folder=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] + (["ro"] if os.geteuid() else [])


def test_atomic_open_reports_a_refused_location_as_one_line_and_cleans_up(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(PointlyError, match="cannot write here"):
        write_json_atomic(blocker / "sub" / "out.json", {})
    with pytest.raises(PointlyError, match="cannot write"):
        write_json_atomic(_unwritable(tmp_path) / "out.json", {})
    # a failure while writing removes the folders that were created for the file
    with pytest.raises(RuntimeError):
        with atomic_open(tmp_path / "x" / "y" / "out.txt") as fh:
            fh.write("half")
            raise RuntimeError("interrupted")
    assert not (tmp_path / "x").exists()


def test_staged_folder_is_all_or_nothing(tmp_path):
    out = tmp_path / "new" / "out"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as stage:
            write_json_atomic(stage / "a.json", {"a": 1})
            (stage / "sub").mkdir()
            (stage / "sub" / "b.txt").write_text("b")
            raise RuntimeError("the 40th image is damaged")
    assert sorted(tmp_path.iterdir()) == []  # the folders it created are gone too
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "keep.txt").write_text("keep")
    (existing / "a.json").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_folder(existing) as stage:
            write_json_atomic(stage / "a.json", {"a": 2})
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in existing.iterdir()) == ["a.json", "keep.txt"]
    assert (existing / "a.json").read_text() == "old"
    with staged_folder(existing) as stage:  # success: files move in, replacing same names
        write_json_atomic(stage / "a.json", {"a": 3})
        (stage / "sub").mkdir()
        (stage / "sub" / "b.txt").write_text("b")
    assert sorted(str(p.relative_to(existing)) for p in existing.rglob("*")) == [
        "a.json",
        "keep.txt",
        "sub",
        "sub/b.txt",
    ]
    assert (existing / "a.json").read_text() == '{"a":3}\n'


def test_pixel_budget(monkeypatch):
    from pointly.pointgen.base.limits import DEFAULT_MAX_PIXELS, check_image_size, max_pixels, set_max_pixels

    assert max_pixels() == DEFAULT_MAX_PIXELS == 50_000_000
    assert check_image_size(640.0, 480, file="f.json", record="images[0]") == (640, 480)
    with pytest.raises(PointlyError, match=r"f.json: images\[0\]: image size 200000x200000 \(40000 MP\) exceeds"):
        check_image_size(200000, 200000, file="f.json", record="images[0]")
    for bad in ((0, 5), (-3, 5), (2.5, 5), ("640", 480), (True, 5)):
        with pytest.raises(PointlyError):
            check_image_size(*bad, file="f.json", record="images[0]")
    monkeypatch.setenv("POINTLY_MAX_PIXELS", "100")
    assert max_pixels() == 100
    with pytest.raises(PointlyError, match="exceeds"):
        check_image_size(11, 10, file=None, record=None)
    set_max_pixels(200)
    try:
        assert check_image_size(11, 10, file=None, record=None) == (11, 10)
    finally:
        set_max_pixels(None)
