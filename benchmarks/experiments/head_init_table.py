"""The table of benchmarks/experiments/head_init.sh's runs: PQ (all / things / stuff) per variant,
mean ± standard error over the finished seeds, each seed's value, and each variant against official
init + AdamW paired by seed (pointgen.intervals: 95 % Student-t interval, pass / fail / undecided)::

    python benchmarks/experiments/head_init_table.py OUT_DIR
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: str) -> None:
    runs: dict[str, dict[int, dict]] = {}
    for pq in sorted(Path(out).glob("*-s*/pq.json")):
        variant, seed = pq.parent.name.rsplit("-s", 1)
        runs.setdefault(variant, {})[int(seed)] = json.loads(pq.read_text())
    from pointly.model.study.intervals import paired_difference
    from pointly.model.study.trends import mean_se

    print("| variant | seeds | PQ | PQ things | PQ stuff | PQ per seed | Δ PQ vs official-AdamW [95 % CI] | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    ref = {s: 100 * r["All"]["pq"] for s, r in runs.get("official-AdamW", {}).items()}
    for variant, by_seed in sorted(runs.items(), key=lambda kv: (kv[0] != "official-AdamW", kv[0])):
        cells = []
        for key in ("All", "Things", "Stuff"):
            m = mean_se(100 * r[key]["pq"] for r in by_seed.values())
            cells.append(f"{m.mean:.1f} ± {m.se:.1f}" if m.n > 1 else f"{m.mean:.1f}")
        seeds = ", ".join(f"s{s}: {100 * r['All']['pq']:.1f}" for s, r in sorted(by_seed.items()))
        diff, verdict = "—", "—"
        if variant != "official-AdamW" and ref:
            d = paired_difference({s: 100 * r["All"]["pq"] for s, r in by_seed.items()}, ref)
            diff, verdict = d.text(), d.verdict
        print(f"| {variant} | {len(by_seed)} | " + " | ".join(cells) + f" | {seeds} | {diff} | {verdict} |")


if __name__ == "__main__":
    main(sys.argv[1])
