"""Hand-made trained-study rows for the report and trend tests."""

from __future__ import annotations

from pointly.model.study.store import rows_frame


def trained_rows(cells, *, cost: bool = False):
    """Trained-study rows as the study writes them (PQ in percent, a dilated cell's dilation the
    training range), one per cell and seed, as a frame. ``cells`` maps ``(supervision, points,
    shape, share, dilation)`` to ``{seed: pq}`` or a sequence (seeds 0, 1, ...); ``cost`` adds the
    cost model's seconds per segment (0.9 s a point, 79 s a full mask)."""
    rows = []
    for (supervision, points, shape, share, dilation), values in cells.items():
        if not isinstance(values, dict):
            values = dict(enumerate(values))
        full = supervision == "full"
        for seed, pq in values.items():
            row = dict(
                cell_id=f"{supervision}-{points}-{shape}-{share}-{dilation}-s{seed}",
                dataset="synthetic",
                supervision=supervision,
                points=None if full else points,
                shape=None if full else shape,
                boundary_share=None if full else share,
                dilation="0.01:0.03" if dilation and not full else "off",
                seed=seed,
                pq=pq,
            )
            if cost:
                row["seconds_per_segment"] = 79.0 if full else 0.9 * points
            rows.append(row)
    return rows_frame(rows)
