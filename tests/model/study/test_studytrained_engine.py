"""The trained study's engine: grids, sharding, append-as-you-go rows, resume, failures.

A fake cell runner (a formula of the axes) stands in for simulate → train → evaluate, so these
tests check the bookkeeping alone; tests/test_studytrained_e2e.py runs the real pipeline.
"""

from __future__ import annotations

import csv
import json

import pytest

from pointly.model.study import trained as st
from pointly.pointgen.base.errors import PointlyError

SETTINGS = {"preset": "test", "dataset": "synthetic", "iters": 3}


class FakeRunner:
    """PQ = 20 + P/10 (+1 for concave), full masks 40; records the cells it ran."""

    def __init__(self, fail: set[str] | None = None, interrupt_after: int | None = None):
        self.ran: list[str] = []
        self.fail = fail or set()
        self.interrupt_after = interrupt_after

    def run(self, cell, cell_dir):
        if self.interrupt_after is not None and len(self.ran) == self.interrupt_after:
            raise KeyboardInterrupt
        self.ran.append(cell.cell_id)
        if cell.cell_id in self.fail:
            raise RuntimeError("boom")
        pq = 40.0 if cell.supervision == "full" else 20 + cell.points / 10 + (cell.shape == "concave")
        return {
            "pq": pq,
            "sq": 80.0,
            "rq": pq / 0.8,
            "pq_th": pq,
            "pq_st": pq,
            "annotation_seconds": 10.0,
            "train_seconds": 1.5,
            "not_a_column": 1,
        }


def test_table13_grid_has_13_cells_and_table14_14():
    assert len(st.part_cells("table13")) == 13
    assert len(st.part_cells("table14")) == 14
    cells = st.preset("synthetic").cells()
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids))
    # table13 (13) + table14 (14, of which P20 concave b0 nodil s0 is already in table13) + seeds (4 new)
    assert len(cells) == 13 + 13 + 4
    assert "P20-concave-b050-dil-s0" in ids and "full-s0" in ids and "P20-concave-b000-nodil-s4" in ids


def test_cell_ids_and_validation():
    assert st.Cell("points", 5, "convex", 0.05, True, 2).cell_id == "P5-convex-b005-dil-s2"
    assert st.Cell("full", seed=1).cell_id == "full-s1"
    with pytest.raises(PointlyError):
        st.Cell("points", 5, "round")
    with pytest.raises(PointlyError):
        st.Cell("points", 0, "convex")
    with pytest.raises(PointlyError):
        st.Cell("boxes")


@pytest.mark.parametrize("text,expected", [(None, (0, 1)), ("0/1", (0, 1)), ("2/3", (2, 3))])
def test_parse_shard(text, expected):
    assert st.parse_shard(text) == expected


@pytest.mark.parametrize("text", ["3/3", "1", "a/b", "-1/2", "0/0"])
def test_parse_shard_rejects(text):
    with pytest.raises(PointlyError, match="shard"):
        st.parse_shard(text)


def test_shards_partition_the_grid():
    cells = st.preset("synthetic").cells()
    parts = [st.shard_cells(cells, (i, 3)) for i in range(3)]
    ids = [c.cell_id for p in parts for c in p]
    assert sorted(ids) == sorted(c.cell_id for c in cells)
    assert len(ids) == len(set(ids))


def test_rows_append_resume_and_skip(tmp_path):
    cells = st.grid((5, 10), ("convex",), full=True)  # 3 cells
    r1 = FakeRunner()
    out = st.run_study(cells, tmp_path, r1, settings=SETTINGS, progress=False, max_cells=2)
    assert out.ran == r1.ran == ["P5-convex-b000-nodil-s0", "P10-convex-b000-nodil-s0"]
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["cell_id"] for r in rows] == out.ran
    assert rows[0]["points"] == "5" and rows[0]["shape"] == "convex" and rows[0]["iters"] == "3"
    assert float(rows[1]["pq"]) == 21.0
    # second run: the two finished cells are skipped, only the third runs
    r2 = FakeRunner()
    out2 = st.run_study(cells, tmp_path, r2, settings=SETTINGS, progress=False)
    assert r2.ran == ["full-s0"] and sorted(out2.skipped) == sorted(out.ran)
    rows = list(csv.DictReader(open(tmp_path / "results.csv")))
    assert [r["cell_id"] for r in rows] == out.ran + ["full-s0"]
    # third run: nothing to do
    r3 = FakeRunner()
    st.run_study(cells, tmp_path, r3, settings=SETTINGS, progress=False)
    assert r3.ran == []
    assert (tmp_path / "report.md").is_file() and (tmp_path / "pq_vs_seconds.png").stat().st_size > 1000


def test_interrupted_cell_runs_again(tmp_path):
    cells = st.grid((5, 10), ("convex",), full=False)
    with pytest.raises(KeyboardInterrupt):
        st.run_study(cells, tmp_path, FakeRunner(interrupt_after=1), settings=SETTINGS, progress=False)
    assert st.csv_cell_ids(tmp_path / "results.csv") == {"P5-convex-b000-nodil-s0"}
    r = FakeRunner()
    st.run_study(cells, tmp_path, r, settings=SETTINGS, progress=False)
    assert r.ran == ["P10-convex-b000-nodil-s0"]


def test_failed_cell_is_logged_and_retried(tmp_path):
    cells = st.grid((5, 10), ("convex",), full=False)
    out = st.run_study(cells, tmp_path, FakeRunner(fail={"P5-convex-b000-nodil-s0"}), settings=SETTINGS, progress=False)
    assert out.failed == ["P5-convex-b000-nodil-s0"] and out.ran == ["P10-convex-b000-nodil-s0"]
    assert "boom" in (tmp_path / "cells" / "P5-convex-b000-nodil-s0" / "error.txt").read_text()
    r = FakeRunner()
    st.run_study(cells, tmp_path, r, settings=SETTINGS, progress=False)
    assert r.ran == ["P5-convex-b000-nodil-s0"]
    assert not (tmp_path / "cells" / "P5-convex-b000-nodil-s0" / "error.txt").exists()


def test_csv_healed_from_row_files_and_torn_line_ignored(tmp_path):
    cells = st.grid((5, 10), ("convex",), full=False)
    st.run_study(cells, tmp_path, FakeRunner(), settings=SETTINGS, progress=False)
    lines = (tmp_path / "results.csv").read_text().splitlines(keepends=True)
    # lose the last row and leave a torn line, as a crash in the middle of a write would
    (tmp_path / "results.csv").write_text("".join(lines[:2]) + lines[2][:10])
    assert st.csv_cell_ids(tmp_path / "results.csv") == {"P5-convex-b000-nodil-s0"}
    r = FakeRunner()
    st.run_study(cells, tmp_path, r, settings=SETTINGS, progress=False)
    assert r.ran == []
    assert st.csv_cell_ids(tmp_path / "results.csv") == {c.cell_id for c in cells}


def test_shards_share_a_folder(tmp_path):
    cells = st.grid((5, 10, 20), ("convex", "concave"), full=True)  # 7 cells
    runners = [FakeRunner() for _ in range(2)]
    for i, r in enumerate(runners):
        st.run_study(cells, tmp_path, r, settings=SETTINGS, shard=(i, 2), progress=False)
    assert sorted(runners[0].ran + runners[1].ran) == sorted(c.cell_id for c in cells)
    assert not set(runners[0].ran) & set(runners[1].ran)
    assert len(st.load_frame(tmp_path)) == 7


def test_other_settings_refused(tmp_path):
    cells = st.grid((5,), ("convex",), full=False)
    st.run_study(cells, tmp_path, FakeRunner(), settings=SETTINGS, progress=False)
    with pytest.raises(PointlyError, match="other settings.*iters"):
        st.run_study(cells, tmp_path, FakeRunner(), settings={**SETTINGS, "iters": 4}, progress=False)
    assert json.loads((tmp_path / "study.json").read_text())["iters"] == 3


def test_csv_rows_without_row_files_count_as_finished(tmp_path):
    """A results.csv copied from another machine (no cells/ folder) is finished work."""
    cells = st.grid((5, 10), ("convex",), full=False)
    other = tmp_path / "other"
    st.run_study(cells[:1], other, FakeRunner(), settings=SETTINGS, progress=False)
    here = tmp_path / "here"
    here.mkdir()
    (here / "results.csv").write_bytes((other / "results.csv").read_bytes())
    r = FakeRunner()
    st.run_study(cells, here, r, settings=SETTINGS, progress=False)
    assert r.ran == ["P10-convex-b000-nodil-s0"]
    frame = st.load_frame(here)
    assert sorted(frame["cell_id"]) == sorted(c.cell_id for c in cells)
    assert frame.set_index("cell_id").loc["P5-convex-b000-nodil-s0", "pq"] == 20.5
