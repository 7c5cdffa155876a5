"""Benchmark: time to generate the synthetic dataset, against just encoding its PNGs.

Run: ``python3 benchmarks/bench_synth.py [--train 200 --val 50]``. Prints the wall time of
``pointly.data.synth.generate`` (one process, one core) and the ratio to a baseline measured in
the same process: encoding the same number of 128×128 RGB and id PNGs with Pillow and writing
them, which any generator must do. The issue's goal is < 20 s for the default 200 + 50 images.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pointly.data.synth import generate, generate_image, image_rng


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--val", type=int, default=50)
    args = ap.parse_args()
    n = args.train + args.val
    # baseline: encode + write n RGB PNGs and n id PNGs (pixels from the generator, made first)
    imgs = [generate_image(image_rng(0, "train", i % 20), 128) for i in range(20)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for i in range(n):
            im = imgs[i % 20]
            for arr, kind in ((im.rgb, "rgb"), (np.stack([im.ids % 256] * 3, -1).astype(np.uint8), "ids")):
                buf = io.BytesIO()
                Image.fromarray(arr).save(buf, format="PNG", compress_level=6)
                Path(tmp, f"{kind}{i}.png").write_bytes(buf.getvalue())
        base = time.perf_counter() - t0
        t0 = time.perf_counter()
        generate(Path(tmp) / "ds", train=args.train, val=args.val, progress=False)
        gen = time.perf_counter() - t0
    print("| images | generate s | PNG encode+write baseline s | ratio | per image ms |")
    print("|---|---|---|---|---|")
    print(f"| {n} | {gen:.2f} | {base:.2f} | {gen / base:.1f}× | {1000 * gen / n:.1f} |")


if __name__ == "__main__":
    main()
