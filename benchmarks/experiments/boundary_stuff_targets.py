"""Why boundary points starve the stuff targets (trend T3, docs/study.md): P20 concave targets of the
synthetic validation set at 0 % and 100 % boundary share, scored against the true masks
(``pointly simulate`` then ``pointly targets --dilation off``), under three changes that the
library does not make by default, each alone and together:

* ``edge``: the image edge counts as a boundary (``pointly simulate --edge-is-boundary``). The
  default definition (docs/formats.md, "Boundary pixels") does not: a region that fills a corner
  of the image gets no point there. ``cv2.findContours``-style simulators do.
* ``hull``: one hull per segment (``--parts hull``), instead of the Delaunay parts that a hull
  holding another segment's point is replaced by.
* ``stuff-own``: a stuff shape is built from the stuff points alone (thing points do not split it;
  where it covers a thing, the thing's shape wins the overlap, as everywhere).

``stuff-own`` is a prototype: it is patched in here, in a child process per run, and nothing in
the library changes. Usage::

    python benchmarks/experiments/boundary_stuff_targets.py --out DIR [--seeds 0,1,2] [--images 50]

Writes DIR/rows.csv (one row per share, variant, seed and split; in %) and prints the Markdown table of
docs/study.md ("Why the stuff collapses"): mean ± standard error over the seeds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

VARIANTS = {
    "library": (),
    "edge": ("edge",),
    "stuff-own": ("stuff-own",),
    "edge + stuff-own": ("edge", "stuff-own"),
    "hull": ("hull",),
    "edge + hull": ("edge", "hull"),
}
METRICS = ["pq", "precision", "recall", "coverage", "agreement"]


def _patch(flags: list[str], thing_ids: set[int]) -> None:
    """Patch the library in this (child) process: stuff shapes from the stuff points alone."""
    if "stuff-own" in flags:
        from pointly.pointgen.targets import build
        from pointly.pointgen.targets.shapes import image_shapes

        def stuff_from_stuff(shapes, parsed, opts, centres):
            kw = dict(
                shape=opts.shape, concave_ratio=opts.concave_ratio, point_radius=opts.point_radius, parts=opts.parts
            )
            pos = [c[lab == 1] for _, c, lab in parsed]
            neg = [c[lab != 1] for _, c, lab in parsed]
            out = list(image_shapes(pos, neg, **kw))
            stuff = [k for k, (a, _, _) in enumerate(parsed) if a["category_id"] not in thing_ids]
            if stuff:
                for k, g in zip(stuff, image_shapes([pos[k] for k in stuff], [neg[k] for k in stuff], **kw)):
                    out[k] = g
            return out

        build._hull_shapes = stuff_from_stuff


def child(argv: list[str]) -> int:
    """``--child FLAGS THINGS -- pointly args``: one pointly command with the patches of FLAGS."""
    flags = [f for f in argv[0].split(",") if f]
    things = {int(t) for t in argv[1].split(",") if t}
    _patch(flags, things)
    from pointly.cli.main import main

    return main(argv[3:])


def subset(src: Path, n: int, out: Path) -> Path:
    """The first ``n`` images of a panoptic JSON (and their annotations), written to ``out``."""
    data = json.loads(src.read_text(encoding="utf-8"))
    keep = {im["id"] for im in data["images"][:n]}
    data["images"] = [im for im in data["images"] if im["id"] in keep]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
    out.write_text(json.dumps(data), encoding="utf-8")
    return out


def run(out: Path, seeds: list[int], images: int, root: Path) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    gt = subset(root / "val" / "panoptic.json", images, out / "gt.json")
    things = ",".join(str(c["id"]) for c in json.loads(gt.read_text())["categories"] if c["isthing"])
    rows = []
    for share in (0.0, 1.0):
        for name, flags in VARIANTS.items():
            edge = "edge" in flags
            tgt_flags = ",".join(f for f in flags if f == "stuff-own")
            for seed in seeds:
                tag = f"b{int(share * 100):03d}-{name.replace(' + ', '+')}-s{seed}"
                pts = out / f"points-b{int(share * 100):03d}-{'edge' if edge else 'lib'}-s{seed}.json"
                base = [sys.executable, __file__, "--child"]
                if not pts.is_file():
                    subprocess.run(
                        base + ["", things, "--", "simulate", "--panoptic-json", str(gt),
                                "--panoptic-dir", str(root / "val" / "panoptic"), "-n", "20",
                                "--boundary-share", str(share), "--seed", str(seed), "-o", str(pts)]
                        + (["--edge-is-boundary"] if edge else []),
                        check=True, capture_output=True,
                    )  # fmt: skip
                res = out / tag
                if not (res / "summary.csv").is_file():
                    subprocess.run(
                        base + [tgt_flags, things, "--", "targets", str(pts), "--out", str(res),
                                "--gt-json", str(gt), "--gt-dir", str(root / "val" / "panoptic"),
                                "--dilation", "off", "--preview-images", "none", "--no-progress",
                                "--parts", "hull" if "hull" in flags else "delaunay"],
                        check=True, capture_output=True,
                    )  # fmt: skip
                summary = pd.read_csv(res / "summary.csv")
                for _, r in summary.iterrows():
                    rows.append(
                        {"share": share, "variant": name, "seed": seed, "split": r["split"]}
                        | {
                            m: 100 * float(r[m])
                            for m in METRICS  # summary.csv holds fractions
                        }
                    )
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "rows.csv", index=False)
    return frame


def table(frame: pd.DataFrame) -> str:
    """Stuff target PQ, precision, recall; things' PQ; mean ± standard error over the seeds."""

    def ms(values) -> str:
        v = np.asarray(values, float)
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        return f"{v.mean():.1f} ± {se:.1f}"

    lines = [
        "| boundary | variant | stuff PQ | stuff precision | stuff recall | things PQ | all PQ | agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for share in (0.0, 1.0):
        for name in VARIANTS:
            g = frame[(frame["share"] == share) & (frame["variant"] == name)]
            if g.empty:
                continue
            st, th, al = (g[g["split"] == s] for s in ("stuff", "things", "all"))
            lines.append(
                f"| {share:.0%} | {name} | {ms(st['pq'])} | {ms(st['precision'])} | {ms(st['recall'])} | "
                f"{ms(th['pq'])} | {ms(al['pq'])} | {ms(al['agreement'])} |"
            )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        raise SystemExit(child(sys.argv[2:]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--synthetic-root", type=Path, default=None, help="default: the study's synthetic set")
    args = ap.parse_args()
    root = args.synthetic_root
    if root is None:
        from pointly.data.synth import ensure_dataset

        root = ensure_dataset(train=1000, val=500, size=128, seed=0)
    frame = run(args.out, [int(s) for s in args.seeds.split(",")], args.images, Path(root))
    print(table(frame))


if __name__ == "__main__":
    main()
