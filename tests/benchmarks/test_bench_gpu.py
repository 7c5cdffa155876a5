"""The prepared GPU run (benchmarks/bench_gpu.py) works end to end, here small on the CPU, so that
a device lease is not spent on finding a bug in the script."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_gpu.py"


def _load_bench(monkeypatch, name: str):
    """benchmarks/bench_gpu.py as a module (benchmarks/ is not a package)."""
    monkeypatch.syspath_prepend(str(BENCH.parent))
    spec = importlib.util.spec_from_file_location(name, BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_bench_gpu_dry_run_on_cpu(tmp_path, monkeypatch):
    module = _load_bench(monkeypatch, "bench_gpu_under_test")
    out = tmp_path / "out"
    rc = module.main(
        [
            "--out",
            str(out),
            "--device",
            "cpu",
            "--sizes",
            "96",
            "--iters",
            "1",
            "--train-iters",
            "1",
            "--train-size",
            "96",
            "--cli-iters",
            "2",
            "--study-iters",
            "2",
            "--study-jobs",
            "2",
            "--no-maskrcnn",
            "--image",
            str(tmp_path / "none.jpg"),
        ]
    )
    res = json.loads((out / "gpu_results.json").read_text())
    assert rc == 0 and res["deform_check"]["ok"]
    # the check compares two separate computations (a shared leaf tensor once made every diff 0)
    assert 0 < res["deform_check"]["output_rel_diff"] < 1e-4
    assert [r["precision"] for r in res["training"]] == ["float32", "bfloat16"]
    assert all(r["all_finite"] for r in res["training"])
    row = res["inference"][0]
    assert row["size"] == 96 and all(row[k] > 0 for k in ("ours_network_fp32_fps", "ours_predict_amp_fps"))
    cli = res["cli"]
    assert (cli["train_rc"], cli["resume_rc"], cli["evaluate_rc"]) == (0, 0, 0), cli
    assert 0.0 <= cli["pq_all"] <= 100.0
    sj = res["study_jobs"]
    assert (sj["jobs1_rc"], sj["jobsN_rc"]) == (0, 0), sj
    assert sj["cells"] == 4 and sj["jobs1_s_per_cell"] > 0 and sj["speedup"] > 0
    assert (out / "study-jobs2" / "results.csv").read_text().count("synthetic-P20-concave") == 4
    text = (out / "gpu_results.md").read_text()
    assert "## Inference" in text and "## Study preset synthetic-gpu" in text


@pytest.mark.slow
def test_bench_gpu_plateau_dry_run_on_cpu(tmp_path, monkeypatch):
    """The plateau part alone: two lengths trained at once, evaluated, gains and the verdict line."""
    module = _load_bench(monkeypatch, "bench_gpu_plateau_under_test")
    out = tmp_path / "out"
    args = ["--out", str(out), "--device", "cpu", "--plateau-only", "--plateau-iters", "2", "4"]
    rc = module.main([*args, "--plateau-images", "6", "3"])
    res = json.loads((out / "gpu_results.json").read_text())
    runs = res["plateau"]["runs"]
    assert rc == 0 and [r["iters"] for r in runs] == [2, 4], runs
    assert all(0.0 <= r["pq"] <= 100.0 for r in runs)
    assert runs[1]["gain"] == pytest.approx(runs[1]["pq"] - runs[0]["pq"], abs=0.01)
    md = (out / "gpu_results.md").read_text()
    assert "## Full-mask plateau" in md and "DCNv2" not in md
    # the verdict line follows the gain: under 1.0 PQ is a plateau at the shorter length
    expect = "from 2 iterations" if abs(runs[1]["gain"]) < 1.0 else "no plateau"
    assert expect in md
    assert module.main(["--out", str(tmp_path / "o2"), "--device", "cpu", "--plateau-only"]) == 2
    assert not (tmp_path / "o2").exists()  # refused before anything is written
