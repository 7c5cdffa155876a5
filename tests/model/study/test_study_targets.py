"""The target-quality study: presets, the scorer (simulation reuse, units), its report, trend rules, CLI.

The engine it runs on (grid, ids, resume, shards, settings, old folders) is tested in test_engine.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from targets_fixtures import simple_simulate

from pointly.cli.main import main
from pointly.model.study import engine
from pointly.model.study import targets as st
from pointly.model.study.grid import Cell, parse_grid
from pointly.model.study.report import trends
from pointly.model.study.store import load_rows, rows_frame
from pointly.pointgen.base.coco import encode_panoptic_png
from pointly.pointgen.base.errors import PointlyError

CATS = [
    {"id": 1, "name": "box", "isthing": 1, "supercategory": "x", "color": [200, 30, 30]},
    {"id": 2, "name": "floor", "isthing": 0, "supercategory": "y", "color": [30, 200, 30]},
]


def tiny_panoptic(root: Path, n: int = 2) -> Path:
    """A COCO-panoptic-shaped folder (panoptic_val2017.json + panoptic/) with n 40×30 images."""
    (root / "panoptic").mkdir(parents=True)
    images, anns = [], []
    rng = np.random.default_rng(0)
    for i in range(1, n + 1):
        lab = np.full((30, 40), 5, np.int64)
        x, y = rng.integers(2, 20), rng.integers(2, 12)
        lab[y : y + 12, x : x + 15] = 7
        lab[0:3, 30:40] = 0  # some VOID
        Image.fromarray(encode_panoptic_png(lab)).save(root / "panoptic" / f"{i}.png")
        info = []
        for sid, cid in ((5, 2), (7, 1)):
            ys, xs = np.nonzero(lab == sid)
            info.append(
                {
                    "id": sid,
                    "category_id": cid,
                    "iscrowd": 0,
                    "area": int(xs.size),
                    "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs) + 1), int(np.ptp(ys) + 1)],
                }
            )
        images.append({"id": i, "file_name": f"{i}.jpg", "width": 40, "height": 30})
        anns.append({"image_id": i, "file_name": f"{i}.png", "segments_info": info})
    (root / "panoptic_val2017.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": CATS}))
    return root


def test_preset_sizes():
    assert len(st.preset_cells("full")) == 6 * 2 * 7 * 2 * 5 * 2
    assert len(st.preset_cells("standard")) == 380 and len(st.preset_cells("quick")) == 8
    assert len(st.preset_cells("defaults")) == (5 + 1) * 3 * 2 * 5 * 3 * 2
    for name in st.PRESETS:
        ids = [c.cell_id for c in st.preset_cells(name)]
        assert len(set(ids)) == len(ids)
    with pytest.raises(PointlyError, match="unknown target-study preset"):
        st.preset_cells("nope")


class CountingSimulate:
    def __init__(self):
        self.calls = 0

    def __call__(self, dataset, options):
        self.calls += 1
        return simple_simulate(dataset, points=options.points, boundary_share=options.boundary_share, seed=options.seed)


def test_scorer_rows_and_report(tmp_path):
    root = tiny_panoptic(tmp_path / "data")
    cells = parse_grid("datasets=coco;points=3,8;shares=0;dilations=0,0.05;seeds=0", "targets")
    assert len(cells) == 8
    out = tmp_path / "study"
    sim = CountingSimulate()
    scorer = st.TargetScorer(st.dataset_sources(coco_root=root), simulate=sim)
    res = engine.run_cells(cells, out, scorer, settings=scorer.settings, progress=False)
    assert len(res.ran) == 8 and sim.calls == 2  # one simulation serves the 4 cells of its points
    rows = load_rows(out)
    assert rows["pq"].between(0, 100).all() and (rows["pq"] > 1).any()  # percent
    assert rows["iou"].between(0, 1).all() and (rows["segments"] == 4).all()  # fractions, counts
    assert set(rows["split"]) == {"val2017"} and set(rows["depth"]) == {"targets"}
    # cost model: 0.9 s per point (segments of >= 8 pixels get exactly n points)
    assert np.allclose(rows["seconds_per_segment"], 0.9 * rows["points"])
    # dilation only adds coverage
    for (_p, _s), g in rows.groupby(["points", "shape"]):
        assert g[g["dilation"] == "0.05"]["coverage"].iloc[0] >= g[g["dilation"] == "off"]["coverage"].iloc[0]
    text = (out / "report.md").read_text()
    assert "## coco" in text and "| T1 |" in text and "dilation 0.05" in text
    assert (out / "table.csv").is_file() and (out / "pq_vs_seconds.png").stat().st_size > 1000
    assert json.loads((out / "study.json").read_text())["datasets"]["coco"]["split"] == "val2017"


#: per-seed noise of a cell (PQ in %), different for every cell so that paired differences vary;
#: small enough that T5 can pass at 3 seeds (twice the χ² upper end of the P20 spread, 6.3 sd, below
#: the smallest effect, 2 PQ)
NOISE = (0.0, 0.02, -0.02, 0.04)


def _rows(pq_by, seeds=(0, 1, 2)):
    """Hand-made target rows (PQ in %): pq_by(shape, points, share, dilated) plus a little noise per seed."""
    rows = []
    k = 0
    for shape in ("convex", "concave"):
        for p in (5, 10, 20, 30, 50, 100):
            for b in (0.0, 0.5, 1.0):
                for d in (None, 0.02):
                    k += 1
                    for seed in seeds:
                        cell = Cell("x", "points", p, shape, b, d, seed)
                        pq = 100 * pq_by(shape, p, b, d is not None) + NOISE[(k + seed) % 4]
                        rows.append({**cell.axes(), "cell_id": cell.cell_id, "pq": pq, "seconds_per_segment": 0.9 * p})
    return rows_frame(rows)


def _paperlike(shape, p, b, dil):
    """Every trend of study.md by construction, with effects of 1.5–5 PQ points against ±0.04 of noise."""
    base = {5: 0.20, 10: 0.25, 20: 0.30, 30: 0.33, 50: 0.35, 100: 0.37}[p]
    if shape == "convex":
        base += 0.02 if p <= 10 else -0.03
    base += {0.0: 0, 0.5: 0.03, 1.0: 0.035}[b]
    base += (0.02 - 0.015 * b) if dil else 0
    return base


def test_trend_rules_on_hand_made_rows():
    """The report's trends (the one evaluator, on the main grid of the rows) on target rows."""
    verdicts = {t.id: t.verdict for t in trends(_rows(_paperlike))}
    # T6 needs a fully supervised reference, which target rows never have
    assert verdicts == {
        "T1": "pass",
        "T2": "pass",
        "T2 (dilated)": "pass",
        "T3": "pass",
        "T4": "pass",
        "T5": "pass",
        "T6": "not measured",
    }

    def inverted(shape, p, b, dil):
        return 0.6 - _paperlike(shape, p, b, dil)  # every paired difference changes sign

    verdicts = {t.id: t.verdict for t in trends(_rows(inverted))}
    assert {k: verdicts[k] for k in ("T1", "T2", "T2 (dilated)", "T3", "T4")} == dict.fromkeys(
        ("T1", "T2", "T2 (dilated)", "T3", "T4"), "fail"
    )
    # one seed: no interval, nothing decided
    verdicts = {t.id: t.verdict for t in trends(_rows(_paperlike, seeds=(0,)))}
    assert {k: verdicts[k] for k in ("T1", "T2", "T3", "T4")} == dict.fromkeys(("T1", "T2", "T3", "T4"), "undecided")
    assert verdicts["T5"] == "not measured"
    partial = _rows(_paperlike)
    verdicts = {t.id: t.verdict for t in trends(partial[partial["points"] == 20])}
    assert verdicts["T1"] == "not measured" and verdicts["T2"] == "not measured"


def test_cli_study_targets(tmp_path, capsys):
    root = tiny_panoptic(tmp_path / "data")
    args = [
        "study",
        "--depth",
        "targets",
        "--grid",
        "datasets=coco;points=4;shares=0,1;dilations=0;seeds=0",
        "--coco-root",
        str(root),
        "--out",
        str(tmp_path / "s"),
        "--no-progress",
    ]
    assert main(args) == 0
    assert "4 cells run" in capsys.readouterr().out
    assert main(args) == 0
    assert "0 cells run, 4 already done" in capsys.readouterr().out
    assert main(["study", "--report-only", "--out", str(tmp_path / "s")]) == 0
    assert "4 rows; report in" in capsys.readouterr().out
    assert main(args + ["--shard", "2/2"]) == 2
    assert "shard" in capsys.readouterr().err
    assert main(args + ["--iters", "3"]) == 2
    assert "--iters belong to --depth trained" in capsys.readouterr().err
    assert main(["study", "--grid", "points=x", "--out", str(tmp_path / "t")]) == 2
    assert main(["study", "--preset", "nope", "--out", str(tmp_path / "t")]) == 2
    assert "unknown target-study preset" in capsys.readouterr().err
    assert main(["study", "--preset", "quick", "--grid", "points=5", "--out", str(tmp_path / "t")]) == 2
    assert main(["study", "--report-only", "--out", str(tmp_path / "empty")]) == 2
    assert "no rows to report" in capsys.readouterr().err
