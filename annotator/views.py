"""What the UI reads from the project: snapshots of an image's segments, measured seconds per
image, segment and annotator (:mod:`pointly.annotator.timing`), progress, and the image list.
"""

from __future__ import annotations

from pointly.annotator.state import Segment, UserState
from pointly.annotator.timing import Measured, measure


class StoreViews:
    """The read-only views of :class:`~pointly.annotator.store.ProjectStore` (a base class of it):
    they use the store's ``images``, ``catalog``, ``categories``, ``image_ids``, ``coco_ids``,
    ``idle_cutoff``, its state lock and ``_timing_cache``."""

    def user_state(self, user: str) -> UserState:
        return self._user(user)

    def snapshot(self, name: str) -> list[Segment]:
        """A copy of the live segments of image ``name`` (creation order)."""
        with self._state:
            return [
                Segment(s.sid, s.category_id, s.isthing, list(s.points), s.bbox)
                for s in self.images[name].live_segments()
            ]

    def _measured(self, name: str) -> tuple[Measured, list[tuple[str, str, int]]]:
        """Measured time of one image (cached per image state) and what each part of it is:
        ``(segment id, clicker, points)`` per annotation id 1, 2, ... of the timing document.

        The timing document has one annotation per segment *and clicker*, so the seconds of each
        point go to whoever clicked it; the image's total is the same as for the exported points
        JSON (each point is charged the gap since the previous point of its image, whatever
        annotation it belongs to).
        """
        with self._state:
            img = self.images[name]
            hit = self._timing_cache.get(name)
            if hit is not None and hit[0] == img.version:
                return hit[1], hit[2]
            entry = self.catalog.entry(name)
            segs = img.live_segments()
            t0 = (
                img.first_open
                if img.first_open is not None
                else min((p.t for s in segs for p in s.points), default=0.0)
            )
            times: dict[tuple[str, str], list[float]] = {}
            category: dict[str, int] = {}
            for seg in segs:
                category[seg.sid] = seg.category_id
                for p in seg.points:
                    times.setdefault((seg.sid, p.user), []).append(round(max(0.0, p.t - t0), 3))
            version = img.version
        parts = [(sid, user, len(ts)) for (sid, user), ts in times.items()]
        anns = [
            {"id": k + 1, "image_id": 1, "category_id": category[sid], "point_times": sorted(ts)}
            for k, ((sid, _), ts) in enumerate(times.items())
        ]
        doc = {
            "images": [{"id": 1, "file_name": name, "width": entry.width, "height": entry.height}],
            "categories": self.categories,
            "annotations": anns,
        }
        m = measure(doc, self.idle_cutoff)
        with self._state:
            self._timing_cache[name] = (version, m, parts)
        return m, parts

    def image_timing(self, name: str) -> tuple[Measured, dict[str, float]]:
        """Measured active time of image ``name`` and its seconds per segment id."""
        m, parts = self._measured(name)
        per_segment: dict[str, float] = {}
        for k, (sid, _, _) in enumerate(parts):
            per_segment[sid] = per_segment.get(sid, 0.0) + m.per_annotation.get(k + 1, 0.0)
        return m, per_segment

    def user_timing(self, user: str) -> tuple[float, int]:
        """Active seconds and timed points of the points ``user`` clicked, over all images
        (in any segment, also in a stuff region another annotator started)."""
        secs, n = 0.0, 0
        with self._state:
            names = [
                name
                for name, img in self.images.items()
                if any(p.user == user for s in img.segments.values() for p in s.points)
            ]
        for name in names:
            m, parts = self._measured(name)
            for k, (_, clicker, count) in enumerate(parts):
                if clicker == user:
                    secs += m.per_annotation.get(k + 1, 0.0)
                    n += count
        return secs, n

    def progress(self) -> tuple[int, int]:
        """(images with at least one segment written out, readable images)."""
        with self._state:
            done = sum(1 for img in self.images.values() if any(s.positive for s in img.live_segments()))
            total = sum(1 for e in self.catalog.entries if e.problem is None)
        return done, total

    def image_records(self) -> list[dict]:
        """Every image of the project in its order: ``id`` (the project's image id: the COCO id
        when the project was opened with ``--images-json``), ``coco_id`` (that COCO id, else None),
        ``file_name``, upright ``width``/``height``, ``readable`` and ``problem``, and how many
        segments it has and how many of them are written out."""
        with self._state:
            out = []
            for e in self.catalog.entries:
                segs = self.images[e.file_name].live_segments()
                out.append(
                    {
                        "id": self.image_ids[e.file_name],
                        "coco_id": self.coco_ids.get(e.file_name),
                        "file_name": e.file_name,
                        "width": e.width,
                        "height": e.height,
                        "readable": e.problem is None,
                        "problem": e.problem,
                        "segments": len(segs),
                        "exported_segments": sum(1 for s in segs if s.positive),
                    }
                )
            return out
