"""The target-quality study: grid, cells, resumable rows, shards, report and trend rules, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from targets_fixtures import simple_simulate

from pointly.cli.main import main
from pointly.model.study import targets as st
from pointly.model.study.targets_report import trends, write_report
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


def test_grid_sizes_and_ids():
    assert len(st.preset_cells("full")) == 6 * 2 * 7 * 2 * 5 * 2
    cells = st.preset_cells("standard")
    assert len({c.cell_id for c in cells}) == len(cells)
    c = st.TargetCell("coco", 20, "concave", 0.5, 0.02, 3, 0.3)
    assert c.cell_id == "coco-P20-concave-r030-b050-d020-s3" and c.dilation
    assert c.options().dilation == 0.02 and c.options().concave_ratio == 0.3
    sub = st.parse_grid("datasets=coco;points=5,20;shares=0;dilations=0;seeds=0,1")
    assert len(sub) == 2 * 2 * 2 and {c.points for c in sub} == {5, 20}
    with pytest.raises(PointlyError, match="unknown grid axis"):
        st.parse_grid("colour=red")
    with pytest.raises(PointlyError, match="unknown shape"):
        st.parse_grid("shapes=round")
    with pytest.raises(PointlyError, match="shard"):
        st.parse_shard("3/2")


def test_run_resume_shards_and_report(tmp_path):
    root = tiny_panoptic(tmp_path / "data")
    sources = st.dataset_sources(coco_root=root)
    cells = st.parse_grid("datasets=coco;points=3,8;shares=0;dilations=0,0.05;seeds=0")
    assert len(cells) == 8
    out = tmp_path / "study"
    a = st.run_target_study(cells, out, sources=sources, shard=(0, 2), progress=False, simulate=simple_simulate)
    assert (a.ran, a.skipped, a.total) == (4, 0, 4)
    b = st.run_target_study(cells, out, sources=sources, shard=(1, 2), progress=False, simulate=simple_simulate)
    assert b.ran == 4
    again = st.run_target_study(cells, out, sources=sources, progress=False, simulate=simple_simulate)
    assert again.ran == 0 and again.skipped == 8
    rows = st.load_rows(out)
    assert len(rows) == 8 and set(rows["cell_id"]) == {c.cell_id for c in cells}
    assert list(rows.columns) == st.ROW_COLUMNS
    assert rows["pq"].between(0, 1).all() and (rows["segments"] == 4).all()
    # cost model: 0.9 s per point (segments of >= 8 pixels get exactly n points)
    assert np.allclose(rows["seconds_per_segment"], 0.9 * rows["points"])
    # dilation only adds coverage
    for (_p, _s), g in rows.groupby(["points", "shape"]):
        assert g[g["dilation"]]["coverage"].iloc[0] >= g[~g["dilation"]]["coverage"].iloc[0]
    # a lost row is recomputed, the others skipped
    lines = (out / "rows-1of2.csv").read_text().splitlines()
    (out / "rows-1of2.csv").write_text("\n".join(lines[:-1]) + "\n")
    c = st.run_target_study(cells, out, sources=sources, progress=False, simulate=simple_simulate)
    assert c.ran == 1
    text = write_report(st.load_rows(out), out)
    assert (out / "results.csv").is_file() and (out / "pq_vs_seconds.png").stat().st_size > 1000
    assert "| T1 |" in text and "### coco" in text
    # another dataset into the same folder is refused
    other = tiny_panoptic(tmp_path / "other", n=1)
    with pytest.raises(PointlyError, match="another coco dataset"):
        st.run_target_study(
            st.parse_grid("datasets=coco;points=4;shares=0;dilations=0;seeds=0"),
            out,
            sources=st.dataset_sources(coco_root=other),
            progress=False,
            simulate=simple_simulate,
        )


#: per-seed noise of a cell (0–1 PQ), different for every cell so that paired differences vary
NOISE = (0.0, 0.001, -0.001, 0.002)


def _rows(pq_by, seeds=(0, 1, 2)):
    """Hand-made target rows (PQ in 0–1): pq_by(shape, points, share, dilated) plus a little noise per seed."""
    rows = []
    k = 0
    for shape in ("convex", "concave"):
        for p in (5, 10, 20, 30, 50, 100):
            for b in (0.0, 0.5, 1.0):
                for d in (0.0, 0.02):
                    k += 1
                    for seed in seeds:
                        rows.append(
                            {
                                "cell_id": f"{shape}{p}{b}{d}{seed}",
                                "dataset": "x",
                                "shape": shape,
                                "points": p,
                                "boundary_share": b,
                                "dilation_radius": d,
                                "dilation": d > 0,
                                "seed": seed,
                                "concave_ratio": 0.3 if shape == "concave" else 1.0,
                                "pq": pq_by(shape, p, b, d > 0) + NOISE[(k + seed) % 4],
                                "seconds_per_segment": 0.9 * p,
                            }
                        )
    return pd.DataFrame(rows)


def _paperlike(shape, p, b, dil):
    """Every trend of study.md by construction, with effects of 1.5–5 PQ points against ±0.2 of noise."""
    base = {5: 0.20, 10: 0.25, 20: 0.30, 30: 0.33, 50: 0.35, 100: 0.37}[p]
    if shape == "convex":
        base += 0.02 if p <= 10 else -0.03
    base += {0.0: 0, 0.5: 0.03, 1.0: 0.035}[b]
    base += (0.02 - 0.015 * b) if dil else 0
    return base


def test_trend_rules_on_hand_made_rows():
    """The report's trends (pointgen.study_trends, PQ converted to percent) on target rows."""
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
    assert main(args + ["--shard", "2/2"]) == 2
    assert "shard" in capsys.readouterr().err
    assert main(["study", "--grid", "points=x", "--out", str(tmp_path / "t")]) == 2
    assert main(["study", "--preset", "nope", "--out", str(tmp_path / "t")]) == 2
    assert "unknown target-study preset" in capsys.readouterr().err
    assert main(["study", "--report-only", "--out", str(tmp_path / "empty")]) == 2
