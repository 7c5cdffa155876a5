"""End to end: ``pointly study --depth trained`` on two tiny cells writes rows, resumes, skips.

The ``smoke`` preset: a 4 + 2 image synthetic set of 64 px images, two cells (P5 convex and the
full-mask reference), 2 training iterations each — the real simulate → train → evaluate
pipeline, only very short.
"""

from __future__ import annotations

import csv
import json
import os
import re

import pytest

from pointly.cli.main import main

pytestmark = pytest.mark.slow

P5, FULL = "synthetic-P5-convex-r100-b000-d000-s0", "synthetic-full-s0"


def _rows(out):
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_study_writes_rows_resumes_and_skips(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("POINTLY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "study"
    base = ["study", "--depth", "trained", "--preset", "smoke", "--out", str(out), "--no-progress"]
    # shard 0 of 2 runs the first cell only
    assert main(base + ["--shard", "0/2"]) == 0
    rows = _rows(out)
    assert [r["cell_id"] for r in rows] == [P5]
    r = rows[0]
    assert r["supervision"] == "points" and r["points"] == "5" and r["shape"] == "convex" and r["iters"] == "2"
    assert r["depth"] == "trained" and r["dilation"] == "off" and r["rules"] == "corrected"
    for key in ("pq", "sq", "rq", "pq_th", "pq_st", "train_seconds", "annotation_seconds", "final_loss"):
        assert r[key] != "" and float(r[key]) >= 0
    # 5 points per segment at 0.9 s each
    assert float(r["seconds_per_segment"]) == pytest.approx(4.5)
    assert (out / "cells" / P5 / "points.json").is_file()
    first_row = out / "cells" / P5 / "row.json"
    stamp = os.stat(first_row).st_mtime_ns
    capsys.readouterr()
    # the whole grid: the finished cell is skipped, the full-mask reference runs
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "1 cells run, 1 already done" in text
    rows = _rows(out)
    assert [r["cell_id"] for r in rows] == [P5, FULL]
    assert rows[1]["supervision"] == "full" and float(rows[1]["seconds_per_segment"]) > 40
    assert os.stat(first_row).st_mtime_ns == stamp
    # a crash after training but before the row was written: the cell runs again, its training
    # resumes from the finished checkpoint (no new iteration), and one row comes back
    full = out / "cells" / FULL
    (full / "row.json").unlink()
    lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(l for l in lines if not l.startswith(FULL + ",")))
    metrics_before = (full / "train" / "metrics.csv").read_text()
    assert main(base) == 0
    assert "1 cells run, 1 already done" in capsys.readouterr().out
    assert (full / "train" / "metrics.csv").read_text() == metrics_before
    assert [r["cell_id"] for r in _rows(out)] == [P5, FULL]
    # nothing left to do; the report exists
    assert main(base) == 0
    assert "0 cells run, 2 already done" in capsys.readouterr().out
    assert len(_rows(out)) == 2
    report = (out / "report.md").read_text()
    assert "| T6 |" in report and P5 in report
    assert (out / "pq_vs_seconds.png").stat().st_size > 1000
    # the report can be rebuilt from the rows alone
    (out / "report.md").unlink()
    assert main(["study", "--depth", "trained", "--out", str(out), "--report-only"]) == 0
    assert "smoke, 2 iterations" in (out / "report.md").read_text()
    capsys.readouterr()
    # other settings into the same folder are refused with one line and exit 2
    assert main(base + ["--iters", "3"]) == 2
    assert "other settings" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args,message",
    [
        (["--shard", "2/2"], "shard"),
        (["--preset", "nope"], "unknown study preset"),
        (["--parts", "table99"], "unknown study part"),
        (["--grid", "points=x"], "bad --grid values"),
    ],
)
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    argv = ["study", "--depth", "trained", "--out", str(tmp_path / "o"), "--no-progress"] + args
    if "--preset" not in args:
        argv += ["--preset", "smoke"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_gpu_preset_dry_run_on_the_cpu_with_two_jobs(tmp_path, capfd):
    """The GPU preset's run as a CPU dry run: its cells, data and settings, two jobs at once (two
    spawned processes appending to one folder), 2 iterations per cell on a tiny synthetic set."""
    from pointly.data.synth import ensure_dataset

    root = ensure_dataset(tmp_path / "data", train=4, val=2, size=64, seed=1)
    out = tmp_path / "gpu-study"
    args = ["study", "--depth", "trained", "--preset", "synthetic-gpu", "--device", "cpu", "--iters", "2",
            "--synthetic-root", str(root), "--grid", "points=5;shapes=convex;seeds=0,1;full=1",
            "--jobs", "2", "--threads", "1", "--out", str(out), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    text = capfd.readouterr().out
    assert "2 jobs of 1 thread(s) each, sharing shard 0/1's cells by claims" in text
    # the jobs split the 4 cells by claims: each job's line counts its own and the other's
    ran = [int(n) for n in re.findall(r"\] (\d+) cells run, 0 already done, 0 failed, (?:\d+) run by other", text)]
    assert len(ran) == 2 and sum(ran) == 4, text
    rows = {r["cell_id"]: r for r in _rows(out)}
    assert set(rows) == {
        "synthetic-P5-convex-r100-b000-d000-s0",
        "synthetic-P5-convex-r100-b000-d000-s1",
        "synthetic-full-s0",
        "synthetic-full-s1",
    }
    settings = json.loads((out / "study.json").read_text())
    assert settings["preset"] == "synthetic-gpu" and settings["training_seed"] == "cell"
    # each cell trained with its own seed
    for cid, r in rows.items():
        cfg = (out / "cells" / cid / "train" / "config.yaml").read_text()
        assert f"seed: {r['seed']}" in cfg
    assert (out / "report.md").is_file()
    # a rerun with jobs finds everything done
    assert main(args) == 0
    assert capfd.readouterr().out.count("0 cells run, 4 already done") == 2  # one line per job
