"""Fuzz test of the promise "every mistake ends in one line": a corpus of malformed inputs,
generated here, runs through every command in-process.

Each case must exit with code 2, print exactly one line (stdout and stderr together, log
warnings included), show no traceback, and leave every file of the case's folder and of the
shared good inputs byte-for-byte as they were (hashed before and after).

The corpus: for each input slot of a command (a JSON file, a PNG folder, a checkpoint), the slot
is replaced by a missing path, a folder, an empty file, truncated JSON, JSON of the wrong type or
shape, duplicate ids, an image declared 200000x200000, a PNG that is not a PNG or has the wrong
size; for each output, an unwritable location, a path under an existing file, a folder where a
file is expected; and options out of range.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pointly.cli.main import main as cli_main

pytestmark = pytest.mark.slow


# ---------------------------------------------------------------------------------------------
# good inputs, made once


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    """A small synthetic panoptic split, its points, an instances JSON and an untrained checkpoint."""
    import torch

    from pointly.data.synth import ensure_dataset
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import config_to_dict, load_config
    from pointly.pointgen.base.coco import open_dataset
    from pointly.pointgen.points.simulate import SimulationOptions, simulate_to_file

    root = tmp_path_factory.mktemp("fuzz-good")
    data = ensure_dataset(root / "synth", train=0, val=2, size=64, seed=5)
    val = data / "val"
    points = root / "points.json"
    simulate_to_file(
        points,
        open_dataset(panoptic_json=val / "panoptic.json", panoptic_dir=val / "panoptic"),
        SimulationOptions(points=5),
        progress=False,
    )
    pan = json.loads((val / "panoptic.json").read_text())
    instances = {
        "images": pan["images"],
        "categories": [c for c in pan["categories"] if c["isthing"]],
        "annotations": [
            {
                "id": 1,
                "image_id": pan["images"][0]["id"],
                "category_id": next(c["id"] for c in pan["categories"] if c["isthing"]),
                "segmentation": [[4, 4, 20, 4, 20, 20, 4, 20]],
                "area": 256.0,
                "bbox": [4, 4, 16, 16],
                "iscrowd": 0,
            }
        ],
    }
    (root / "instances.json").write_text(json.dumps(instances))
    torch.manual_seed(0)
    cfg = load_config("synthetic_small")
    cfg.categories = [{k: c[k] for k in ("id", "name", "isthing")} for c in pan["categories"]]
    ckpt = root / "model_final.pth"
    torch.save(
        {"model": build_panoptic_fcn(cfg).state_dict(), "config": config_to_dict(cfg), "pointly_checkpoint": 1}, ckpt
    )
    return {
        "root": root,
        "data": data,
        "pan_json": val / "panoptic.json",
        "pan_dir": val / "panoptic",
        "images": val / "images",
        "points": points,
        "instances": root / "instances.json",
        "ckpt": ckpt,
    }


# ---------------------------------------------------------------------------------------------
# malformed inputs


def _json_variants(doc: dict) -> dict[str, object]:
    """Malformed versions of a COCO-like document: name -> content (str = raw text)."""
    text = json.dumps(doc)
    images = doc["images"]
    dup = json.loads(text)
    key = "annotations" if dup.get("annotations") else "images"
    dup[key] = dup[key] + [dup[key][0]]
    huge = json.loads(text)
    huge["images"][0]["width"] = huge["images"][0]["height"] = 200000
    shapeless = json.loads(text)
    shapeless["images"] = [{"id": "x"}]
    return {
        "empty": "",
        "truncated": text[: len(text) // 2],
        "list": "[]",
        "number": "7",
        "images-not-list": json.dumps({**doc, "images": 5}),
        "images-wrong-shape": json.dumps(shapeless),
        "duplicate-ids": json.dumps(dup),
        "huge-image": json.dumps(huge),
        "negative-size": json.dumps({**doc, "images": [{**images[0], "width": -3}] + images[1:]}),
        "not-utf8": b"\xff\xfe\x00garbage",
    }


def _write(path: Path, content: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(str(content))
    return path


def _unwritable(work: Path) -> Path:
    """A folder nothing can be written into: read-only for a normal user; /sys for root."""
    if os.geteuid() == 0:
        return Path("/sys/pointly-fuzz")
    ro = work / "readonly"
    ro.mkdir(exist_ok=True)
    ro.chmod(0o555)
    return ro


def _cases(good: dict[str, Path], work: Path, busy_port: int) -> list[tuple[str, list[str]]]:
    """(case name, argv) pairs; every input the case changes is written under ``work``.
    ``busy_port`` is a port in use, so that an annotate case that wrongly passes cannot serve."""
    g = {k: str(v) for k, v in good.items()}
    cases: list[tuple[str, list[str]]] = []
    blocker = _write(work / "afile", "x")  # outputs "under a file" go below it
    unwritable = _unwritable(work)
    outputs_file = {
        "unwritable": str(unwritable / "out.json"),
        "under-file": str(blocker / "out.json"),
        "is-folder": str(work),
    }
    outputs_dir = {"unwritable": str(unwritable / "out"), "under-file": str(blocker / "out"), "is-file": str(blocker)}

    def bad_inputs(name: str, doc: dict) -> dict[str, str]:
        out = {"missing": str(work / f"{name}-missing.json"), "folder": str(work)}
        for variant, content in _json_variants(doc).items():
            out[variant] = str(_write(work / f"{name}-{variant}.json", content))
        return out

    pan = json.loads(good["pan_json"].read_text())
    pts = json.loads(good["points"].read_text())
    ins = json.loads(good["instances"].read_text())
    bad_pan = bad_inputs("panoptic", pan)
    bad_pts = bad_inputs("points", pts)
    bad_ins = bad_inputs("instances", ins)

    # a PNG folder with one broken PNG, one of the wrong size
    png_dirs = {}
    for variant in ("garbage", "wrong-size"):
        d = work / f"png-{variant}"
        shutil.copytree(good["pan_dir"], d)
        first = sorted(d.iterdir())[-1]  # the last image: earlier ones must not leave output behind
        if variant == "garbage":
            first.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        else:
            Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(first)
        png_dirs[variant] = str(d)

    out_json = str(work / "new" / "out.json")
    out_dir = str(work / "new" / "out")

    # simulate
    sim = ["simulate", "--no-progress", "--panoptic-json", g["pan_json"], "--panoptic-dir", g["pan_dir"]]
    for v, p in bad_pan.items():
        cases.append(
            (
                f"simulate-panoptic-{v}",
                ["simulate", "--no-progress", "--panoptic-json", p, "--panoptic-dir", g["pan_dir"], "-o", out_json],
            )
        )
    for v, p in bad_ins.items():
        cases.append((f"simulate-instances-{v}", ["simulate", "--no-progress", "--instances-json", p, "-o", out_json]))
    for v, d in png_dirs.items():
        cases.append(
            (
                f"simulate-png-{v}",
                ["simulate", "--no-progress", "--panoptic-json", g["pan_json"], "--panoptic-dir", d, "-o", out_json],
            )
        )
    for v, o in outputs_file.items():
        cases.append((f"simulate-output-{v}", sim + ["-o", o]))
    for opt, val in (("-n", "0"), ("--boundary-share", "1.5"), ("--seed", "-1"), ("--workers", "0")):
        cases.append((f"simulate-option{opt}={val}", sim + ["-o", out_json, opt, val]))

    # cost
    for v, p in bad_pts.items():
        cases.append((f"cost-points-{v}", ["cost", p]))
    for v, o in outputs_file.items():
        cases.append((f"cost-output-{v}", ["cost", g["points"], "-o", o.replace(".json", ".csv")]))
    cases.append(("cost-option-seconds-per-point=-1", ["cost", g["points"], "--seconds-per-point", "-1"]))

    # targets
    tg = ["targets", "--no-progress", g["points"], "--gt-json", g["pan_json"], "--gt-dir", g["pan_dir"]]
    for v, p in bad_pts.items():
        cases.append((f"targets-points-{v}", ["targets", "--no-progress", p, "--out", out_dir]))
    for v, p in bad_pan.items():
        cases.append(
            (
                f"targets-gt-{v}",
                ["targets", "--no-progress", g["points"], "--gt-json", p, "--gt-dir", g["pan_dir"], "--out", out_dir],
            )
        )
    for v, d in png_dirs.items():
        cases.append(
            (
                f"targets-png-{v}",
                ["targets", "--no-progress", g["points"], "--gt-json", g["pan_json"], "--gt-dir", d, "--out", out_dir],
            )
        )
    for v, o in outputs_dir.items():
        cases.append((f"targets-out-{v}", tg + ["--out", o]))
    for opt, val in (
        ("--concave-ratio", "2"),
        ("--point-radius", "-1"),
        ("--dilation", "banana"),
        ("--preview-images", "-3"),
    ):
        cases.append((f"targets-option{opt}={val}", tg + ["--out", out_dir, opt, val]))

    # data synth / data stats
    for v, o in outputs_dir.items():
        cases.append(
            (
                f"data-synth-out-{v}",
                ["data", "synth", "--no-progress", "--train", "1", "--val", "1", "--size", "32", "--out", o],
            )
        )
    for opt, val in (("--size", "8"), ("--train", "-1")):
        cases.append((f"data-synth-option{opt}={val}", ["data", "synth", "--no-progress", "--out", out_dir, opt, val]))
    stats_root = work / "stats-bad"
    _write(stats_root / "val" / "panoptic.json", "{")
    cases.append(("data-stats-truncated", ["data", "stats", str(stats_root)]))
    cases.append(("data-stats-missing", ["data", "stats", str(work / "nothing-here")]))

    # evaluate (folders mode: the ground truth against itself)
    ev = ["evaluate", "--gt-json", g["pan_json"], "--gt-dir", g["pan_dir"]]
    for v, p in bad_pan.items():
        cases.append(
            (
                f"evaluate-gt-{v}",
                [
                    "evaluate",
                    "--gt-json",
                    p,
                    "--gt-dir",
                    g["pan_dir"],
                    "--pred-json",
                    g["pan_json"],
                    "--pred-dir",
                    g["pan_dir"],
                ],
            )
        )
        if v != "duplicate-ids":  # a second prediction for an image replaces the first, as in panopticapi
            cases.append((f"evaluate-pred-{v}", ev + ["--pred-json", p, "--pred-dir", g["pan_dir"]]))
    for v, d in png_dirs.items():
        cases.append((f"evaluate-pred-png-{v}", ev + ["--pred-json", g["pan_json"], "--pred-dir", d]))
    for v, o in outputs_file.items():
        cases.append(
            (f"evaluate-json-out-{v}", ev + ["--pred-json", g["pan_json"], "--pred-dir", g["pan_dir"], "--json-out", o])
        )

    # predict
    broken = _write(work / "broken-images" / "a.jpg", b"not a jpeg")
    empty_dir = work / "no-images"
    empty_dir.mkdir()
    pr = ["predict", "--no-progress", "--checkpoint", g["ckpt"]]
    for v, o in outputs_dir.items():
        cases.append((f"predict-out-{v}", pr + [g["images"], "-o", o]))
    cases.append(("predict-nothing-readable", pr + [str(broken.parent), "-o", out_dir]))
    cases.append(("predict-empty-folder", pr + [str(empty_dir), "-o", out_dir]))
    for v in ("missing", "folder", "empty", "truncated"):
        cases.append(
            (
                f"predict-checkpoint-{v}",
                ["predict", "--no-progress", "--checkpoint", bad_pts[v], g["images"], "-o", out_dir],
            )
        )
    for v in ("truncated", "list", "number"):
        cases.append((f"predict-categories-{v}", pr + [g["images"], "-o", out_dir, "--categories", bad_pan[v]]))

    # train (every mistake must be caught before the first write and before training starts)
    tr = [
        "train",
        "--config",
        "synthetic_small",
        "--no-progress",
        "--set",
        f"data.train_json={g['pan_json']}",
        "--set",
        f"data.train_panoptic_dir={g['pan_dir']}",
        "--set",
        f"data.train_image_dir={g['images']}",
        "--set",
        "data.num_workers=0",
    ]
    for val in ("0", "-5"):
        cases.append((f"train-max-iter={val}", tr + ["--out", out_dir, "--max-iter", val]))
    for v, o in outputs_dir.items():
        cases.append((f"train-out-{v}", tr + ["--out", o, "--max-iter", "1"]))
    for v, p in bad_pts.items():
        cases.append(
            (f"train-points-{v}", tr + ["--out", out_dir, "--max-iter", "1", "--supervision", "points", "--points", p])
        )
    other = json.loads(json.dumps(pts))
    for im in other["images"]:
        im["id"] += 1000
        im["file_name"] = f"other-{im['file_name']}"
    for a in other["annotations"]:
        a["image_id"] += 1000
    cases.append(
        (
            "train-points-other-dataset",
            tr
            + [
                "--out",
                out_dir,
                "--max-iter",
                "1",
                "--supervision",
                "points",
                "--points",
                str(_write(work / "other.json", json.dumps(other))),
            ],
        )
    )

    # convert-weights
    for v in ("missing", "folder", "empty", "truncated"):
        cases.append((f"convert-weights-{v}", ["convert-weights", bad_pts[v], "-o", str(work / "new" / "c.pth")]))
    for v, o in outputs_file.items():
        cases.append((f"convert-weights-out-{v}", ["convert-weights", g["ckpt"], "-o", o.replace(".json", ".pth")]))

    # study (targets depth: cheap to reject)
    for v, o in outputs_dir.items():
        cases.append(
            (
                f"study-out-{v}",
                [
                    "study",
                    "--no-progress",
                    "--depth",
                    "targets",
                    "--grid",
                    "points=5;shapes=convex;seeds=0",
                    "--out",
                    o,
                ],
            )
        )
    cases.append(
        ("study-grid-bad", ["study", "--no-progress", "--depth", "targets", "--grid", "points=zero", "--out", out_dir])
    )
    cases.append(
        (
            "study-report-only-nothing",
            ["study", "--no-progress", "--depth", "targets", "--report-only", "--out", out_dir],
        )
    )
    cases.append(
        (
            "study-trained-preset-bad",
            ["study", "--no-progress", "--depth", "trained", "--preset", "nope", "--out", out_dir],
        )
    )
    cases.append(
        (
            "study-trained-grid-bad",
            ["study", "--no-progress", "--depth", "trained", "--grid", "points=x", "--out", out_dir],
        )
    )
    cases.append(
        ("study-shard-bad", ["study", "--no-progress", "--depth", "targets", "--shard", "3/2", "--out", out_dir])
    )

    # annotate (only mistakes: a good call starts a server)
    cases.append(
        (
            "annotate-rebuild-missing-project",
            ["annotate", g["images"], "--rebuild", "--project", str(work / "no-project")],
        )
    )
    cases.append(
        (
            "annotate-only-broken-images",
            ["annotate", str(broken.parent), "--project", str(work / "new-project"), "--port", str(busy_port)],
        )
    )
    for v, o in outputs_dir.items():
        cases.append((f"annotate-project-{v}", ["annotate", g["images"], "--project", o, "--port", str(busy_port)]))
    cases.append(
        (
            "annotate-preview-dilation-bad",
            [
                "annotate",
                g["images"],
                "--project",
                str(work / "p2"),
                "--preview-dilation",
                "banana",
                "--port",
                str(busy_port),
            ],
        )
    )
    return cases


def _snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` (path -> content hash), folders included as entries."""
    out = {}
    for root in roots:
        for dirpath, _dirnames, filenames in os.walk(root):
            out[dirpath] = "dir"
            for f in filenames:
                p = os.path.join(dirpath, f)
                out[p] = hashlib.sha1(Path(p).read_bytes()).hexdigest()
    return out


def test_every_malformed_input_ends_in_one_line(good, tmp_path, capsys, caplog):
    """All cases of the corpus; failures are listed together, with the count in the message."""
    caplog.set_level(logging.WARNING)
    work = tmp_path / "work"
    work.mkdir()
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    cases = _cases(good, work, busy.getsockname()[1])
    failures = []
    for name, argv in cases:
        before = _snapshot(work, good["root"])
        caplog.clear()
        try:
            code = cli_main(argv)
        except BaseException as exc:  # noqa: BLE001 - a raise out of main is itself a failure
            code = f"raised {type(exc).__name__}: {exc}"
        captured = capsys.readouterr()
        lines = [ln for ln in (captured.out + captured.err).splitlines() if ln.strip()]
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        after = _snapshot(work, good["root"])
        problems = []
        if code != 2:
            problems.append(f"exit {code}")
        if len(lines) + len(warnings) != 1:
            problems.append(f"{len(lines)} lines + {len(warnings)} log warnings: {(lines + warnings)[:3]}")
        if "Traceback" in captured.err:
            problems.append("traceback")
        if before != after:
            changed = sorted(set(before.items()) ^ set(after.items()))
            problems.append(f"files changed: {[p for p, _ in changed][:3]}")
        if problems:
            failures.append(f"{name}: {'; '.join(problems)}")
    busy.close()
    print(f"{len(cases)} malformed inputs, {len(cases) - len(failures)} kept the promise")
    assert not failures, f"{len(failures)} of {len(cases)} cases broke the promise:\n" + "\n".join(failures)
