"""The one study engine of both depths: grid syntax, cell ids, resume, settings, torn rows, units,
old folders.

The scorers here are stand-ins (a formula of the axes that counts its calls), except for the
perfect-targets cell, which runs the real target scorer on a hand-made dataset whose targets are
known to equal the true masks (PQ 100).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from targets_fixtures import simple_simulate

from pointly.cli.main import main
from pointly.model.study import engine
from pointly.model.study.grid import Cell, parse_grid, parse_shard, shard_cells
from pointly.model.study.store import ROW_COLUMNS, format_value, load_rows, normalise_row
from pointly.model.study.targets import TargetScorer, dataset_sources
from pointly.model.study.trained_cell import metrics_row
from pointly.pointgen.base.coco import encode_panoptic_png
from pointly.pointgen.base.errors import PointlyError

TRAINED = {"depth": "trained", "preset": "test", "dataset": "synthetic", "iters": 3}
TARGETS = {"depth": "targets", "datasets": {"synthetic": {"json": "a.json"}}}


class CountingScorer:
    """PQ = 20 + P/10 (+1 concave), full masks 40; counts its calls in a shared Counter. ``kill_at``:
    the run is killed (KeyboardInterrupt, which the engine does not isolate) before that many cells;
    ``fail``: cells that raise (a failure the engine isolates)."""

    def __init__(self, calls: Counter, *, needs_folder: bool = False, kill_at: int | None = None, fail=()):
        self.calls, self.needs_folder, self.kill_at, self.fail = calls, needs_folder, kill_at, set(fail)
        self.ran = 0

    def score(self, cell, cell_dir):
        if self.kill_at is not None and self.ran == self.kill_at:
            raise KeyboardInterrupt  # a kill: not a cell failure, the run stops here
        self.ran += 1
        self.calls[cell.cell_id] += 1
        if cell.cell_id in self.fail:
            raise RuntimeError("boom")
        if self.needs_folder:
            (cell_dir / "model.txt").write_text("weights")
        pq = 40.0 if cell.supervision == "full" else 20 + cell.points / 10 + (cell.shape == "concave")
        return {"pq": pq, "sq": 80.0, "rq": pq / 0.8, "annotation_seconds": 10.0, "not_a_column": 1}


def _run(cells, out, scorer, settings=TRAINED, **kw):
    return engine.run_cells(cells, out, scorer, settings=settings, progress=False, **kw)


# --------------------------------------------------------------------------- grid and ids
def test_both_grid_syntaxes_give_the_same_cells():
    # the target study's syntax (radii, 0 = off) and the trained study's (dilations 0/1, singular keys)
    old_targets = parse_grid("datasets=coco;points=5,20;shares=0;dilations=0,0.02;seeds=0", "targets")
    spelled = parse_grid("dataset=coco;point=5,20;share=0;dilation=off,on;seed=0;ratio=0.3", "targets")
    assert old_targets == spelled and len(old_targets) == 2 * 2 * 2
    old_trained = parse_grid("points=20;shapes=concave;shares=0,0.5;dilations=0,1;seeds=0,1;full=1", "trained")
    explicit = parse_grid(
        "datasets=synthetic;points=20;shapes=concave;shares=0,0.5;dilations=off,0.01:0.03;seeds=0,1;full=on",
        "trained",
    )
    assert old_trained == explicit and len(old_trained) == 2 * 2 * 2 + 2
    # on = the depth's default: a radius for the targets, the training range for the trained study
    assert {c.dilation for c in spelled} == {None, 0.02}
    assert {c.dilation for c in old_trained} == {None, (0.01, 0.03)}
    # fully spelled out, both depths give the same cells
    text = "datasets=synthetic;points=5,10;shapes=convex,concave;shares=0,1;dilations=0,0.02;seeds=3;ratios=0.2"
    assert parse_grid(text + ";full=0", "trained") == parse_grid(text, "targets")
    # missing keys take the depth's defaults
    assert len(parse_grid("", "targets")) == 1680 and len(parse_grid("", "trained")) == 13


@pytest.mark.parametrize(
    "text,message",
    [
        ("colour=red", "unknown --grid key"),
        ("shapes=round", "unknown shape"),
        ("points=x", "bad --grid values for points"),
        ("dilations=8px", "bad --grid values for dilations"),
        ("rules=newest", "unknown target rules"),
        ("points", "cannot read --grid part"),
    ],
)
def test_bad_grids_are_refused(text, message):
    with pytest.raises(PointlyError, match=message):
        parse_grid(text, "trained")
    with pytest.raises(PointlyError, match="full masks have none"):
        parse_grid("full=1", "targets")


def test_cell_ids_round_trip_through_rows():
    cells = parse_grid(
        "datasets=coco,synthetic;points=5,20;shapes=convex,concave,watershed;shares=0,0.05;"
        "dilations=off,0.02,0.01:0.03;seeds=0,4;ratios=0.1,0.3;rules=corrected,baseline;full=1",
        "trained",
    )
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)
    for cell in cells:
        as_csv = {k: format_value(v) or None for k, v in cell.axes().items()}
        assert Cell.from_row(cell.axes()) == cell and Cell.from_row(as_csv) == cell
    assert Cell("coco", "points", 20, "concave", 0.5, 0.02, 3, 0.3).cell_id == "coco-P20-concave-r030-b050-d020-s3"
    assert Cell("synthetic", "points", 20, "concave", 0, (0.01, 0.03), 0).cell_id == (
        "synthetic-P20-concave-r030-b000-d010-030-s0"
    )
    assert Cell("synthetic", "points", 5, "convex", rules="baseline").cell_id == (
        "synthetic-P5-convex-r100-b000-d000-s0-baseline"
    )
    assert Cell("synthetic", "full", seed=1).cell_id == "synthetic-full-s1"
    # an id in a row is never trusted: it is recomputed from the axes
    row = normalise_row({**Cell("coco", "points", 5, "convex").axes(), "cell_id": "whatever", "depth": "targets"})
    assert row["cell_id"] == "coco-P5-convex-r100-b000-d000-s0"
    for bad in ({"supervision": "boxes"}, {"points": 0}, {"shape": "round"}, {"boundary_share": 2.0}):
        with pytest.raises(PointlyError):
            Cell(**{"dataset": "coco", "supervision": "points", "points": 5, "shape": "convex", **bad})


def test_shards_partition_the_grid():
    cells = parse_grid("", "trained") + parse_grid("points=20;shapes=concave;seeds=1,2;full=0", "trained")
    parts = [shard_cells(cells, (i, 3)) for i in range(3)]
    ids = [c.cell_id for p in parts for c in p]
    assert sorted(ids) == sorted(c.cell_id for c in cells) and len(ids) == len(set(ids))
    assert parse_shard(None) == (0, 1) and parse_shard("2/3") == (2, 3)
    for bad in ("3/3", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(PointlyError, match="shard"):
            parse_shard(bad)


# --------------------------------------------------------------------------- the loop
@pytest.mark.parametrize("needs_folder", [False, True])
def test_resumes_after_a_kill_without_redoing_finished_cells(tmp_path, needs_folder):
    cells = parse_grid("points=5,10,20;shapes=convex,concave;full=1", "trained")  # 7 cells
    calls: Counter = Counter()
    with pytest.raises(KeyboardInterrupt):
        _run(cells, tmp_path, CountingScorer(calls, needs_folder=needs_folder, kill_at=3))
    assert len(load_rows(tmp_path)) == 3
    out = _run(cells, tmp_path, CountingScorer(calls, needs_folder=needs_folder))
    assert len(out.ran) == 4 and len(out.skipped) == 3
    assert set(calls) == {c.cell_id for c in cells} and set(calls.values()) == {1}  # each cell scored once
    again = _run(cells, tmp_path, CountingScorer(calls, needs_folder=needs_folder))
    assert again.ran == [] and len(again.skipped) == 7 and set(calls.values()) == {1}
    rows = list(csv.DictReader(open(tmp_path / "results.csv", encoding="utf-8")))
    assert [r["cell_id"] for r in rows] == [c.cell_id for c in cells]
    assert list(rows[0]) == ROW_COLUMNS and rows[0]["iters"] == "3" and rows[0]["depth"] == "trained"
    assert (tmp_path / "cells" / cells[0].cell_id / "row.json").is_file() == needs_folder
    assert (tmp_path / "report.md").is_file() and (tmp_path / "pq_vs_seconds.png").stat().st_size > 1000


def test_shards_share_a_folder_and_a_failed_cell_runs_again(tmp_path):
    cells = parse_grid("points=5,10,20;shapes=convex,concave;full=1", "trained")
    calls: Counter = Counter()
    bad = cells[1].cell_id
    outs = [_run(cells, tmp_path, CountingScorer(calls, fail={bad}), shard=(i, 2)) for i in range(2)]
    assert outs[1].failed == [bad] and len(outs[0].ran) + len(outs[1].ran) == 6
    assert "boom" in (tmp_path / "cells" / bad / "error.txt").read_text()
    out = _run(cells, tmp_path, CountingScorer(calls))
    assert out.ran == [bad] and calls[bad] == 2 and not (tmp_path / "cells" / bad).exists()
    assert len(load_rows(tmp_path)) == 7


def test_a_cell_another_live_process_runs_is_passed_over(tmp_path):
    """Cells that keep a folder are claimed: one a live process holds (a sleeping child here) is
    left to it; once that process is gone, the next run takes it over."""
    import socket
    import subprocess
    import sys

    from pointly.model.study.claims import CLAIM

    cells = parse_grid("points=5,10,20;shapes=convex;full=0", "trained")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim = tmp_path / "cells" / cells[1].cell_id / CLAIM
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps({"host": socket.gethostname(), "pid": holder.pid, "started": None}))
        calls: Counter = Counter()
        out = _run(cells, tmp_path, CountingScorer(calls, needs_folder=True))
        assert out.elsewhere == [cells[1].cell_id] and out.ran == [cells[0].cell_id, cells[2].cell_id]
        assert cells[1].cell_id not in calls and claim.is_file()  # the holder's claim is left alone
    finally:
        holder.kill()
        holder.wait()
    again = _run(cells, tmp_path, CountingScorer(calls, needs_folder=True))
    assert again.ran == [cells[1].cell_id] and set(calls.values()) == {1}
    assert not claim.exists()  # released once the row is written


def test_workers_sharing_a_folder_score_every_cell_once(tmp_path):
    """Two workers walking the same grid at once (threads here; jobs and machines alike) split it
    between them by claims: every cell scored exactly once, each worker busy, one row per cell."""
    import threading
    import time

    cells = parse_grid("points=5,10,20,50,100;shapes=convex,concave;full=1", "trained")  # 11 cells
    calls: Counter = Counter()
    guard = threading.Lock()

    class SlowScorer(CountingScorer):
        def score(self, cell, cell_dir):
            time.sleep(0.05)
            with guard:
                return super().score(cell, cell_dir)

    outs = [None, None]

    def work(k):
        outs[k] = _run(cells, tmp_path, SlowScorer(calls, needs_folder=True))

    workers = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert set(calls) == {c.cell_id for c in cells} and set(calls.values()) == {1}
    assert all(out.ran for out in outs) and len(outs[0].ran) + len(outs[1].ran) == len(cells)
    assert sorted(outs[0].ran + outs[0].elsewhere) == sorted(c.cell_id for c in cells)
    assert sorted(load_rows(tmp_path)["cell_id"]) == sorted(c.cell_id for c in cells)


def test_a_cell_that_failed_elsewhere_during_this_run_waits_for_the_next(tmp_path):
    import os
    import time

    cells = parse_grid("points=5,10;shapes=convex;full=0", "trained")
    error = tmp_path / "cells" / cells[0].cell_id / "error.txt"
    error.parent.mkdir(parents=True)
    error.write_text("boom")
    later = time.time() + 3600  # as if another process failed it after this run began
    os.utime(error, (later, later))
    calls: Counter = Counter()
    out = _run(cells, tmp_path, CountingScorer(calls, needs_folder=True))
    assert out.elsewhere == [cells[0].cell_id] and out.ran == [cells[1].cell_id]
    earlier = time.time() - 3600  # a failure of an earlier run is retried
    os.utime(error, (earlier, earlier))
    out = _run(cells, tmp_path, CountingScorer(calls, needs_folder=True))
    assert out.ran == [cells[0].cell_id] and not error.exists()


def test_refuses_rows_of_other_settings(tmp_path):
    cells = parse_grid("points=5;shapes=convex;full=0", "trained")
    _run(cells, tmp_path, CountingScorer(Counter()))
    with pytest.raises(PointlyError, match=r"other settings \(iters\)") as err:
        _run(cells, tmp_path, CountingScorer(Counter()), settings={**TRAINED, "iters": 4})
    assert "\n" not in str(err.value)
    with pytest.raises(PointlyError, match=r"other settings \(depth\)"):
        _run(cells, tmp_path, CountingScorer(Counter()), settings={**TRAINED, "depth": "targets"})
    assert json.loads((tmp_path / "study.json").read_text())["iters"] == 3
    # the target study compares dataset by dataset: a new dataset may join, another source may not
    other = tmp_path / "t"
    _run(cells, other, CountingScorer(Counter()), settings=TARGETS)
    coco = {"depth": "targets", "datasets": {"coco": {"json": "c.json"}}}
    _run(parse_grid("datasets=coco;points=5;shapes=convex;shares=0;dilations=0;seeds=0", "targets"), other,
         CountingScorer(Counter()), settings=coco)  # fmt: skip
    assert set(json.loads((other / "study.json").read_text())["datasets"]) == {"coco", "synthetic"}
    with pytest.raises(PointlyError, match=r"other settings \(datasets.synthetic\)"):
        _run(cells, other, CountingScorer(Counter()), settings={**TARGETS, "datasets": {"synthetic": {"json": "b"}}})


def test_a_folder_from_before_the_training_seed_setting_resumes_only_as_it_trained(tmp_path):
    """Folders written before ``training_seed`` was a setting trained every cell with the config's
    seed: they resume with ``fixed`` and refuse ``cell``, which would pair different trainings."""
    cells = parse_grid("points=5;shapes=convex;seeds=0,1;full=0", "trained")
    _run(cells[:1], tmp_path, CountingScorer(Counter()))  # TRAINED has no training_seed key
    with pytest.raises(PointlyError, match=r"other settings \(training_seed\)"):
        _run(cells, tmp_path, CountingScorer(Counter()), settings={**TRAINED, "training_seed": "cell"})
    calls: Counter = Counter()
    _run(cells, tmp_path, CountingScorer(calls), settings={**TRAINED, "training_seed": "fixed"})
    assert list(calls) == [cells[1].cell_id]
    assert json.loads((tmp_path / "study.json").read_text())["training_seed"] == "fixed"
    # a new folder records it, and then compares it like any other key
    new = tmp_path / "new"
    _run(cells[:1], new, CountingScorer(Counter()), settings={**TRAINED, "training_seed": "cell"})
    with pytest.raises(PointlyError, match=r"other settings \(training_seed\)"):
        _run(cells, new, CountingScorer(Counter()), settings={**TRAINED, "training_seed": "fixed"})


def test_points_that_count_the_image_edge_do_not_mix_with_points_that_do_not(tmp_path):
    """``edge_is_boundary`` is a folder setting: a folder from before it (no key) resumes as
    False and refuses True; both depths record it."""
    from pointly.model.study import targets, trained

    cells = parse_grid("points=5;shapes=convex;seeds=0,1;full=0", "trained")
    _run(cells[:1], tmp_path, CountingScorer(Counter()))  # TRAINED has no edge_is_boundary key
    with pytest.raises(PointlyError, match=r"other settings \(edge_is_boundary\)"):
        _run(cells, tmp_path, CountingScorer(Counter()), settings={**TRAINED, "edge_is_boundary": True})
    _run(cells, tmp_path, CountingScorer(Counter()), settings={**TRAINED, "edge_is_boundary": False})
    assert json.loads((tmp_path / "study.json").read_text())["edge_is_boundary"] is False
    t = trained.setup("smoke", device="cpu", edge_is_boundary=True)
    assert t.settings["edge_is_boundary"] is True and t.scorer.preset.edge_is_boundary is True
    assert trained.setup("smoke", device="cpu").settings["edge_is_boundary"] is False
    g = targets.setup(
        grid="points=5;shares=1;seeds=0", coco_root=halves_panoptic(tmp_path / "h"), edge_is_boundary=True
    )
    assert g.settings(g.cells)["edge_is_boundary"] is True and g.scorer.edge_is_boundary


def test_refusal_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    out = tmp_path / "s"
    args = [
        "study",
        "--depth",
        "targets",
        "--grid",
        "datasets=coco;points=4;shapes=convex;shares=0;dilations=0;seeds=0",
    ]
    args += ["--out", str(out), "--no-progress"]
    assert main(args + ["--coco-root", str(halves_panoptic(tmp_path / "a"))]) == 0
    assert "1 cells run" in capsys.readouterr().out
    assert main(args + ["--coco-root", str(halves_panoptic(tmp_path / "b"))]) == 2
    err = capsys.readouterr().err
    assert "other settings (datasets.coco)" in err and err.count("\n") == 1


def test_a_torn_last_line_is_ignored_and_healed(tmp_path):
    cells = parse_grid("points=5,10,20;shapes=convex;full=0", "trained")
    _run(cells, tmp_path, CountingScorer(Counter()))
    path = tmp_path / "results.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 25])  # a crash in the middle of the last row's write
    assert set(load_rows(tmp_path)["cell_id"]) == {c.cell_id for c in cells[:2]}
    calls: Counter = Counter()
    out = _run(cells, tmp_path, CountingScorer(calls))
    assert out.ran == [cells[2].cell_id] and sum(calls.values()) == 1
    text = path.read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 4
    assert all(len(r) == len(ROW_COLUMNS) for r in csv.reader(text.splitlines()))


def test_the_csv_is_healed_from_row_files(tmp_path):
    cells = parse_grid("points=5,10;shapes=convex;full=0", "trained")
    _run(cells, tmp_path, CountingScorer(Counter(), needs_folder=True))
    lines = (tmp_path / "results.csv").read_text().splitlines(keepends=True)
    (tmp_path / "results.csv").write_text("".join(lines[:2]))  # the last append was lost
    calls: Counter = Counter()
    _run(cells, tmp_path, CountingScorer(calls, needs_folder=True))
    assert not calls and len((tmp_path / "results.csv").read_text().splitlines()) == 3


# --------------------------------------------------------------------------- units
def halves_panoptic(root: Path) -> Path:
    """A COCO-panoptic folder of two 40×30 images: stuff on the left, a thing on the right (the
    split column differs per folder name, so two folders are two datasets)."""
    (root / "panoptic").mkdir(parents=True)
    cats = [
        {"id": 1, "name": "box", "isthing": 1, "supercategory": "x", "color": [200, 30, 30]},
        {"id": 2, "name": "floor", "isthing": 0, "supercategory": "y", "color": [30, 200, 30]},
    ]
    cut = 18 + len(root.name) % 5
    images, anns = [], []
    for i in (1, 2):
        lab = np.full((30, 40), 5, np.int64)
        lab[:, cut + i :] = 7
        Image.fromarray(encode_panoptic_png(lab)).save(root / "panoptic" / f"{i}.png")
        info = []
        for sid, cid in ((5, 2), (7, 1)):
            ys, xs = np.nonzero(lab == sid)
            bbox = [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)]
            info.append({"id": sid, "category_id": cid, "iscrowd": 0, "area": int(xs.size), "bbox": bbox})
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30})
        anns.append({"image_id": i, "file_name": f"{i}.png", "segments_info": info})
    doc = {"images": images, "annotations": anns, "categories": cats}
    (root / "panoptic_val2017.json").write_text(json.dumps(doc))
    return root


def test_pq_is_in_percent_in_both_depths(tmp_path):
    # targets: every pixel of a segment is a point, so each target is its true mask: PQ 100
    scorer = TargetScorer(
        dataset_sources(coco_root=halves_panoptic(tmp_path / "d")),
        simulate=lambda ds, options: simple_simulate(ds, points=10**6, seed=options.seed),
    )
    cell = Cell("coco", "points", 5, "convex", 0.0, None, 0)
    out = engine.run_cells([cell], tmp_path / "t", scorer, settings=scorer.settings, progress=False)
    (row,) = load_rows(tmp_path / "t").to_dict("records")
    assert out.ran == [cell.cell_id]
    for col in ("pq", "sq", "rq", "pq_th", "pq_st"):
        assert row[col] == pytest.approx(100.0)
    assert row["iou"] == pytest.approx(1.0) and row["coverage"] == pytest.approx(1.0)  # fractions
    # trained: the evaluator's 0–1 results become percent
    res = {g: {"pq": 0.5, "sq": 0.8, "rq": 0.625, "n": 3} for g in ("All", "Things", "Stuff")}
    assert metrics_row(res)["pq"] == 50.0 and metrics_row(res)["rq_st"] == 62.5


# --------------------------------------------------------------------------- old folders
OLD_TARGET_HEADER = (
    "cell_id,dataset,split,depth,supervision,points,shape,concave_ratio,boundary_share,dilation,"
    "dilation_radius,seed,pq,sq,rq,precision,coverage,annotation_seconds,seconds_per_segment"
)


def test_an_old_target_folder_loads_in_percent_and_resumes(tmp_path):
    (tmp_path / "rows-0of1.csv").write_text(
        OLD_TARGET_HEADER + "\n"
        "coco-P20-concave-r030-b000-d020-s0,coco,val2017,targets,points,20,concave,0.3,0,True,0.02,0,"
        "0.5,0.75,0.6,0.9,0.4,954,18\n"
        "coco-P5-convex-r100-b050-d000-s1,coco,val2017,targets,points,5,convex,1,0.5,False,0,1,"
        "0.125,0.5,0.25,0.8,0.3,238.5,4.5\n"
    )
    (tmp_path / "study.json").write_text(json.dumps({"depth": "targets", "datasets": {"coco": {"json": "x"}}}))
    frame = load_rows(tmp_path).set_index("cell_id")
    # rows written before the rules were an axis were made with the first design's rules
    first = "coco-P20-concave-r030-b000-d020-s0-baseline"
    assert frame.loc[first, "pq"] == 50.0 and frame.loc[first, "rq"] == 60.0
    assert frame.loc[first, "dilation"] == "0.02" and frame.loc[first, "precision"] == 0.9
    assert frame.loc["coco-P5-convex-r100-b050-d000-s1-baseline", "pq"] == 12.5
    # it resumes: the old cells are skipped, a new one is appended in the current layout
    cells = parse_grid("datasets=coco;points=20;shapes=concave;shares=0;dilations=0.02;seeds=0,1;rules=baseline",
                       "targets")  # fmt: skip
    calls: Counter = Counter()
    settings = {"depth": "targets", "datasets": {"coco": {"json": "x"}}}
    out = _run(cells, tmp_path, CountingScorer(calls), settings=settings)
    assert out.skipped == [first] and list(calls) == ["coco-P20-concave-r030-b000-d020-s1-baseline"]
    assert len(load_rows(tmp_path)) == 3 and load_rows(tmp_path)["pq"].max() == 50.0
    assert json.loads((tmp_path / "study.json").read_text())["legacy"] == {"rules": "baseline"}
    assert main(["study", "--report-only", "--out", str(tmp_path)]) == 0
    # P20 concave with dilation: seeds 50.0 (old, 0.5) and 23.0 (new) → 36.5 ± 13.5 in the report
    assert "36.5 ± 13.5" in (tmp_path / "report.md").read_text()


def test_an_old_trained_folder_loads_and_resumes(tmp_path):
    header = "cell_id,dataset,split,supervision,points,shape,boundary_share,dilation,seed,iters,concave_ratio,pq"
    (tmp_path / "results.csv").write_text(
        header + "\n"
        "P20-concave-b000-dil-s0,synthetic,val,points,20,concave,0.0,True,0,400,0.3,30.5\n"
        "full-s0,synthetic,val,full,,,,False,0,400,0.3,40.0\n"
    )
    old_settings = {
        "preset": "synthetic",
        "dataset": "synthetic",
        "iters": 400,
        "concave_ratio": 0.3,
        "dilation": {"dilation": [0.01, 0.03], "dilation_units": "relative"},
    }
    (tmp_path / "study.json").write_text(json.dumps(old_settings))
    row_dir = tmp_path / "cells" / "P5-convex-b000-nodil-s0"
    row_dir.mkdir(parents=True)
    (row_dir / "row.json").write_text(
        json.dumps(
            {
                "cell_id": "P5-convex-b000-nodil-s0",
                "dataset": "synthetic",
                "supervision": "points",
                "points": 5,
                "shape": "convex",
                "boundary_share": 0.0,
                "dilation": False,
                "seed": 0,
                "iters": 400,
                "concave_ratio": 0.3,
                "pq": 10.0,
            }
        )  # fmt: skip
    )
    frame = load_rows(tmp_path).set_index("cell_id")
    dil = "synthetic-P20-concave-r030-b000-d010-030-s0-baseline"
    assert sorted(frame.index) == sorted([dil, "synthetic-full-s0", "synthetic-P5-convex-r100-b000-d000-s0-baseline"])
    assert frame.loc[dil, "dilation"] == "0.01:0.03" and frame.loc[dil, "pq"] == 30.5  # already percent
    assert set(frame["depth"]) == {"trained"}
    cells = parse_grid("points=5,20;shapes=convex;rules=baseline;full=1", "trained")
    calls: Counter = Counter()
    new = {"depth": "trained", "preset": "synthetic", "dataset": "synthetic", "iters": 400, "target_rules": "corrected"}
    _run(cells, tmp_path, CountingScorer(calls), settings=new)
    assert list(calls) == ["synthetic-P20-convex-r100-b000-d000-s0-baseline"]  # P5 and full were done
    # the old rows still read as they did once study.json holds the new keys
    assert dil in set(load_rows(tmp_path)["cell_id"]) and len(load_rows(tmp_path)) == 4
    header_now = (tmp_path / "results.csv").read_text().splitlines()[0]
    assert header_now.split(",") == ROW_COLUMNS
