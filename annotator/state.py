"""What an annotation project holds in memory: images, their segments and points, and each
annotator's place; and :class:`ActionRefused`, the answer to an action that is not possible now.

Every point remembers who clicked it (the journal it came from), so a point that annotator B adds
to a stuff region A started counts for B: in the per-user points and seconds, and in the segment's
``annotators`` list.

A point has a label: 1 = in the segment, 0 = not in it (a negative point). A thing instance may
have an object box, drawn as two opposite corners in box mode (or set through the API); it is
written as the annotation's ``bbox``, which the PointSup export takes as the object's box. A
segment is written to the points JSON once it has a point in it (label 1): the target builder and
PointSup need one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ActionRefused(Exception):
    """An action that is not possible now (no category picked, image held by someone else...).

    The message is shown to the annotator; nothing was written.
    """


@dataclass
class Point:
    x: int
    y: int
    t: float
    user: str
    label: int = 1  # 1 = in the segment, 0 = not in it


@dataclass
class Segment:
    sid: str
    category_id: int
    isthing: bool
    points: list[Point] = field(default_factory=list)
    bbox: list[int] | None = None  # the drawn object box [x, y, w, h] (things only)

    @property
    def positive(self) -> bool:
        """True when a point lies in the segment (label 1): only then is it written out."""
        return any(p.label == 1 for p in self.points)


@dataclass
class ImageState:
    name: str
    opens: list[float] = field(default_factory=list)
    segments: dict[str, Segment] = field(default_factory=dict)  # insertion = creation order
    version: int = 0

    @property
    def first_open(self) -> float | None:
        return min(self.opens) if self.opens else None

    def live_segments(self) -> list[Segment]:
        """The segments shown: those with a point or a box."""
        return [s for s in self.segments.values() if s.points or s.bbox is not None]


@dataclass(frozen=True)
class TabView:
    """What one browser tab shows: the image, the category and the current segment.

    One annotator may have several tabs open; the user's state on the server follows whichever
    tab acted last. A click from a tab carries its view, so the point goes where that tab said it
    would go (its image, its category, its current segment), not where another tab moved since.
    """

    image: str
    category_id: int | None
    segment: str | None
    box_mode: bool = False  # the tab's clicks are box corners


@dataclass
class UserState:
    image: str | None = None
    segment: str | None = None
    category_id: int | None = None
    preview: bool = False
    last_seen: float = 0.0
    segments_made: int = 0
    box_mode: bool = False  # clicks are box corners
    corner: tuple[str, int, int] | None = None  # (image, x, y): the first corner of a box being drawn


def corners_box(x0: int, y0: int, x1: int, y1: int) -> list[int]:
    """The COCO box ``[x, y, w, h]`` whose opposite corner pixels are (x0, y0) and (x1, y1), both
    inside it (a pixel is 1×1, as in :func:`pointly.pointgen.base.points_format.points_bbox`)."""
    return [min(x0, x1), min(y0, y1), abs(x1 - x0) + 1, abs(y1 - y0) + 1]
