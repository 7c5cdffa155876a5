"""Image-aware targets (``--shape watershed``) against the hulls, on real and synthetic panoptic
sets: target PQ, precision, recall, coverage and label agreement of ``pointly targets``, P5/P10/P20,
3 sampling seeds, each comparison paired by seed (95 % Student-t interval, pointgen.intervals).

Usage: python benchmarks/experiments/watershed_targets.py --out DIR [--seeds 0,1,2] [--synthetic-root R]
           [--datasets coco,tiny_coco]
Prints the Markdown table of docs/targets.md and writes DIR/rows.csv (``--datasets`` reruns only
those datasets and keeps the other rows of DIR/rows.csv). ``tiny_coco`` is COCO instances (things
only, 50 val images): its unlabelled pixels are VOID, so no stuff region seeds them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
CONFIGS = [("concave", "on"), ("convex", "on"), ("concave", "off"), ("watershed", "off")]
METRICS = ["pq", "precision", "recall", "coverage", "agreement"]


def datasets(synthetic_root: Path | None) -> dict[str, tuple[Path, Path | None, Path]]:
    """name -> (panoptic JSON, PNG folder, images) or, for instances, (instances JSON, None, images)."""
    out: dict[str, tuple[Path, Path | None, Path]] = {
        "coco": (
            SHARED / "coco_panoptic_val2017" / "panoptic_val2017.json",
            SHARED / "coco_panoptic_val2017" / "panoptic",
            SHARED / "coco_panoptic_val2017" / "images",
        ),
        "coconut139": (
            SHARED / "coconut_val2017_139" / "panoptic.json",
            SHARED / "coconut_val2017_139" / "panoptic",
            SHARED / "coconut_val2017_139" / "images",
        ),
        "nuclei": (
            SHARED / "dsb2018_nuclei" / "panoptic.json",
            SHARED / "dsb2018_nuclei" / "panoptic",
            SHARED / "dsb2018_nuclei" / "images",
        ),
        "tiny_coco": (
            SHARED / "tiny_coco" / "annotations" / "instances_val2017.json",
            None,
            SHARED / "tiny_coco" / "images" / "val2017",
        ),
    }
    if synthetic_root is not None:
        out["synthetic"] = (
            synthetic_root / "val" / "panoptic.json",
            synthetic_root / "val" / "panoptic",
            synthetic_root / "val" / "images",
        )
    return out


def run(out: Path, seeds: list[int], synthetic_root: Path | None, only: list[str] | None = None) -> pd.DataFrame:
    rows = []
    for name, (js, png, images) in datasets(synthetic_root).items():
        if only and name not in only:
            continue
        source = ["--panoptic-json", str(js), "--panoptic-dir", str(png)] if png else ["--instances-json", str(js)]
        truth = ["--gt-json", str(js), "--gt-dir", str(png)] if png else ["--gt-instances", str(js)]
        for n in (5, 10, 20):
            for seed in seeds:
                pts = out / f"{name}-P{n}-s{seed}.json"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pointly.cli.main",
                        "simulate",
                        "--no-progress",
                        *source,
                        "-n",
                        str(n),
                        "--seed",
                        str(seed),
                        "-o",
                        str(pts),
                    ],
                    check=True,
                    capture_output=True,
                )
                for shape, dil in CONFIGS:
                    t = out / "t"
                    subprocess.run(
                        [
                            sys.executable,
                            "-m",
                            "pointly.cli.main",
                            "targets",
                            "--no-progress",
                            str(pts),
                            "--out",
                            str(t),
                            *truth,
                            "--images",
                            str(images),
                            "--shape",
                            shape,
                            "--dilation",
                            dil,
                            "--preview-images",
                            "none",
                        ],
                        check=True,
                        capture_output=True,
                    )
                    summ = pd.read_csv(t / "summary.csv")
                    r = summ[summ["split"] == "all"].iloc[0]
                    rows.append(
                        {
                            "dataset": name,
                            "points": n,
                            "seed": seed,
                            "shape": shape,
                            "dilation": dil,
                            **{m: 100 * float(r[m]) for m in METRICS},
                        }
                    )
    frame = pd.DataFrame(rows)
    if only and (out / "rows.csv").is_file():
        kept = pd.read_csv(out / "rows.csv")
        frame = pd.concat([kept[~kept["dataset"].isin(only)], frame], ignore_index=True)
    frame.to_csv(out / "rows.csv", index=False)
    return frame


def table(frame: pd.DataFrame) -> str:
    from pointly.model.study.intervals import paired_difference

    lines = [
        "| dataset | P | concave + dil. | convex + dil. | watershed | watershed − best hull [95 % CI] | verdict "
        "| precision (ws / convex + dil.) | coverage (ws / convex + dil.) | label accuracy (ws / convex + dil.) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, n), g in frame.groupby(["dataset", "points"], sort=False):

        def cell(shape, dil):
            return g[(g["shape"] == shape) & (g["dilation"] == dil)].set_index("seed")

        cc, cv, ws = cell("concave", "on"), cell("convex", "on"), cell("watershed", "off")
        best = cv if cv["pq"].mean() >= cc["pq"].mean() else cc
        d = paired_difference(dict(ws["pq"]), dict(best["pq"]))
        se = lambda c: c["pq"].std(ddof=1) / len(c) ** 0.5  # noqa: E731
        lines.append(
            f"| {name} | P{n} | {cc['pq'].mean():.1f} ± {se(cc):.1f} | {cv['pq'].mean():.1f} ± {se(cv):.1f} | "
            f"{ws['pq'].mean():.1f} ± {se(ws):.1f} | {d.text()} | {d.verdict} | "
            f"{ws['precision'].mean():.1f} / {cv['precision'].mean():.1f} | "
            f"{ws['coverage'].mean():.1f} / {cv['coverage'].mean():.1f} | "
            f"{ws['agreement'].mean():.1f} / {cv['agreement'].mean():.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--synthetic-root", type=Path, default=None)
    ap.add_argument("--table-only", action="store_true", help="Only print the table of DIR/rows.csv.")
    ap.add_argument("--datasets", default=None, help="comma-separated subset to (re)run; other rows are kept")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    frame = (
        pd.read_csv(a.out / "rows.csv")
        if a.table_only
        else run(
            a.out,
            [int(s) for s in a.seeds.split(",")],
            a.synthetic_root,
            a.datasets.split(",") if a.datasets else None,
        )
    )
    print(table(frame))


if __name__ == "__main__":
    main()
