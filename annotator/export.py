"""The project's files derived from its state: ``points.json`` (the points JSON) and
``pointsup.json`` (the things as a detectron2 PointSup COCO JSON), rewritten atomically whenever
the state changed (at most every ``flush_interval`` seconds, by a background thread).
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
from typing import Any

from pointly.pointgen.base.files import write_json_atomic
from pointly.pointgen.base.points_format import make_document, points_bbox, validate_points
from pointly.pointgen.interop.pointsup import export_pointsup

log = logging.getLogger(__name__)

POINTS_FILE = "points.json"
POINTSUP_FILE = "pointsup.json"


class StoreExport:
    """The export of :class:`~pointly.annotator.store.ProjectStore` (a base class of it): it uses
    the store's ``dir``, ``names``, ``image_ids``, ``images``, ``users``, ``catalog``,
    ``categories``, ``coco_file``, ``idle_cutoff``, its state lock, ``_dirty``, the flusher fields
    and ``journals``."""

    def _image_annotations(self, name: str, image_id: int, first_id: int = 1) -> list[dict]:
        """The points-JSON annotations of one image (segments with a point in them, by first
        point). ``bbox`` is the drawn box, else the box of all the points (which the PointSup
        export recognises as only the box of the clicks)."""
        img = self.images[name]
        segs = sorted((s for s in img.live_segments() if s.positive), key=lambda s: min(p.t for p in s.points))
        if not segs:
            return []
        t0 = img.first_open if img.first_open is not None else min(p.t for s in segs for p in s.points)
        anns = []
        for seg in segs:
            pts = sorted(seg.points, key=lambda p: p.t)
            coords = [[p.x, p.y] for p in pts]
            users = [p.user for p in pts]
            anns.append(
                {
                    "id": first_id + len(anns),
                    "image_id": image_id,
                    "category_id": seg.category_id,
                    "iscrowd": 0,
                    "point_coords": coords,
                    "point_labels": [p.label for p in pts],
                    "point_kinds": ["click"] * len(pts),
                    "point_times": [round(max(0.0, p.t - t0), 3) for p in pts],
                    "bbox": [float(v) for v in seg.bbox] if seg.bbox else points_bbox(coords),
                    # who clicked: the segment's creator first, then any other annotator
                    "annotators": sorted(set(users), key=users.index),
                }
            )
        return anns

    def to_document(self) -> dict:
        """The project's points JSON (annotated images only), deterministic for a given state."""
        with self._state:
            images, anns = [], []
            for name in self.names:
                image_id = self.image_ids[name]
                part = self._image_annotations(name, image_id, len(anns) + 1)
                if not part:
                    continue
                e = self.catalog.entry(name)
                images.append({"id": image_id, "file_name": name, "width": e.width, "height": e.height})
                anns.extend(part)
            users = sorted(u for u, s in self.users.items() if s.last_seen)
            stamps = [p.t for img in self.images.values() for s in img.live_segments() if s.positive for p in s.points]
            prov: dict[str, Any] = {
                "made_by": "annotator",
                "users": users,
                "images_dir": str(self.catalog.root),
                "idle_cutoff": self.idle_cutoff,
            }
            if self.coco_file is not None:
                prov["images_json"] = self.coco_file.name
            if stamps:
                prov["first_point"] = _iso(min(stamps))
                prov["last_point"] = _iso(max(stamps))
            return make_document(images, self.categories, anns, prov)

    def flush(self, force: bool = False) -> bool:
        """Rewrite points.json and pointsup.json atomically when the state changed."""
        with self._state:
            if not (self._dirty or force):
                return False
            self._dirty = False
            doc = self.to_document()
        validate_points(doc, file=self.dir / POINTS_FILE)
        write_json_atomic(self.dir / POINTS_FILE, doc)
        # measured times are not PointSup's; an instance without a drawn box has its clicks' box
        # (PointSup's warning about those is not the annotator's)
        write_json_atomic(
            self.dir / POINTSUP_FILE, export_pointsup(doc, file=self.dir / POINTSUP_FILE, drop_times=True)[0]
        )
        return True

    def start_flusher(self) -> None:
        """Rewrite the points files in the background at most every ``flush_interval`` seconds."""

        def loop() -> None:
            while not self._stop.wait(self._flush_interval):
                try:
                    self.flush()
                except Exception:  # never kill the flusher; the journals stay the truth
                    log.exception("rewriting the points JSON failed")

        self._flusher = threading.Thread(target=loop, name="pointly-flush", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop the flusher, write the points files a last time and close the journals."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush(force=True)
        for j in self.journals.values():
            j.close()


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")
