"""Atomic writes: all or nothing, plain-file permissions."""
from __future__ import annotations

import os

import pytest

from pointly.pointgen.io_utils import atomic_open, write_json_atomic


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
