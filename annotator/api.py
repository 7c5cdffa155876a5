"""The annotator's HTTP API: twin endpoints of the UI actions (``/click``, ``/undo``, ...; see
docs/annotator.md), each calling the same :meth:`~pointly.annotator.app.AnnotatorApp.act` code
path as the browser and returning the caller's state as JSON.

Arguments are checked for their JSON type first (Gradio passes them as sent): a float or string
coordinate is an error of the call (gradio_client raises it), never rounded, and never a message
in a state. The read-only endpoints (``/export``, ``/export_pointsup``, ``/images``,
``/categories``) return documents, never server paths.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from pointly.annotator.app import AnnotatorApp, request_user
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.interop.pointsup import export_pointsup


def integer_argument(name: str, value: Any, what: str, allowed: tuple[int, ...] | None = None) -> int:
    """``value`` when it is a JSON integer (and one of ``allowed``); a one-line
    :class:`PointlyError` otherwise. API arguments are never rounded or parsed: a float
    coordinate or a string "12" is a mistake of the caller, not a pixel."""
    if type(value) is not int:
        raise PointlyError(
            f"{name} must be an integer ({what}), got {value!r} ({type(value).__name__})",
            fix=f"pass {name} as a JSON integer",
        )
    if allowed is not None and value not in allowed:
        raise PointlyError(
            f"{name} must be {' or '.join(map(str, allowed))} ({what}), got {value}",
            fix=f"pass {name} as one of {', '.join(map(str, allowed))}",
        )
    return value


def text_argument(name: str, value: Any, what: str) -> str:
    """``value`` when it is a string; a one-line :class:`PointlyError` otherwise."""
    if not isinstance(value, str):
        raise PointlyError(
            f"{name} must be a string ({what}), got {value!r} ({type(value).__name__})",
            fix=f"pass {name} as a JSON string",
        )
    return value


def add_api_endpoints(app: AnnotatorApp) -> None:
    """Register the twin API endpoints of ``app``; call it inside the page's ``gr.Blocks``."""
    store = app.store

    async def api_state(user: str, action: str, *args: Any) -> dict:
        def work() -> dict:
            msgs = app.act(user, action, *args)
            _, notes = app._current(user)
            return app.state(user, msgs + notes)

        return await app.in_order(user, work)

    def checked(make_args):
        """Run ``make_args`` (the argument checks); a mistake becomes the call's error."""
        try:
            return make_args()
        except PointlyError as exc:
            raise gr.Error(str(exc), print_exception=False) from None

    async def api_click(x: int, y: int, request: gr.Request, label: int = 1) -> dict:
        """Add the point (x, y) (original-image pixel indices) to the current segment; label 1 =
        in the segment (default), 0 = not in it. In box mode: a box corner."""
        args = checked(
            lambda: (
                integer_argument("x", x, "a pixel column"),
                integer_argument("y", y, "a pixel row"),
                integer_argument("label", label, "1 in the segment, 0 not in it", (0, 1)),
            )
        )
        return await api_state(request_user(request), "click", *args)

    async def api_box(x0: int, y0: int, x1: int, y1: int, request: gr.Request) -> dict:
        """Give the current thing instance the box with opposite corner pixels (x0, y0), (x1, y1)
        (original-image pixel indices, both inside the box); a new instance when there is none."""
        args = checked(
            lambda: tuple(
                integer_argument(n, v, "a pixel index") for n, v in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1))
            )
        )
        return await api_state(request_user(request), "box", *args)

    async def api_remove_box(request: gr.Request) -> dict:
        """Remove the box of the current segment."""
        return await api_state(request_user(request), "remove_box")

    async def api_box_mode(request: gr.Request) -> dict:
        """Toggle box mode: the next two clicks are opposite corners of the instance's box."""
        return await api_state(request_user(request), "box_mode")

    async def api_category(category: str | int, request: gr.Request) -> dict:
        """Pick a category by name or id."""
        if type(category) is not int:
            checked(lambda: text_argument("category", category, "a category name or an integer id"))
        return await api_state(request_user(request), "category", category)

    async def api_select(segment: str, request: gr.Request) -> dict:
        """Make a segment (its id from the state) current."""
        checked(lambda: text_argument("segment", segment, "a segment id from the state"))
        return await api_state(request_user(request), "select", segment)

    async def api_open(image: str, request: gr.Request) -> dict:
        """Open an image by its name in the project (no other path is accepted)."""
        checked(lambda: text_argument("image", image, "an image file_name from /images"))
        return await api_state(request_user(request), "open", image)

    async def api_navigate(step: int, request: gr.Request) -> dict:
        """Move to the next (+1) or previous (-1) free image."""
        checked(lambda: integer_argument("step", step, "the direction", (1, -1)))
        return await api_state(request_user(request), "navigate", step)

    async def api_undo(request: gr.Request) -> dict:
        """Undo the last point on the current image."""
        return await api_state(request_user(request), "undo")

    async def api_new(request: gr.Request) -> dict:
        """The next click starts a new instance."""
        return await api_state(request_user(request), "new")

    async def api_delete(request: gr.Request) -> dict:
        """Delete the current segment."""
        return await api_state(request_user(request), "delete")

    async def api_preview(request: gr.Request) -> dict:
        """Toggle the target preview."""
        return await api_state(request_user(request), "preview")

    async def api_get_state(request: gr.Request) -> dict:
        """The current state of the calling annotator."""
        return await api_state(request_user(request), "noop")

    async def api_export(request: gr.Request) -> dict:
        """The project's points JSON document (points.json and pointsup.json on the server are
        rewritten first)."""
        return await app.in_order(request_user(request), app.export_document)

    async def api_export_pointsup(request: gr.Request) -> dict:
        """The things of the project as a detectron2 PointSup COCO JSON document."""

        def work() -> dict:
            doc = app.export_document()
            return export_pointsup(doc, file=store.dir / "pointsup.json", drop_times=True)[0]

        return await app.in_order(request_user(request), work)

    def api_images() -> list:
        """Every image of the project: id (the COCO id with --images-json), coco_id, file_name,
        width, height, readable, problem, segments, exported_segments."""
        return app.image_list()

    def api_categories() -> list:
        """The project's categories: id, name, isthing, ... and the digit key picking it."""
        return app.category_list()

    for fn, name in [
        (api_click, "click"),
        (api_box, "set_box"),
        (api_remove_box, "remove_box"),
        (api_box_mode, "toggle_box_mode"),
        (api_category, "pick_category"),
        (api_select, "select_segment"),
        (api_open, "open_image"),
        (api_navigate, "navigate"),
        (api_undo, "undo"),
        (api_new, "new_instance"),
        (api_delete, "delete_segment"),
        (api_preview, "toggle_preview"),
        (api_get_state, "state"),
        (api_export, "export"),
        (api_export_pointsup, "export_pointsup"),
        (api_images, "images"),
        (api_categories, "categories"),
    ]:
        gr.api(fn, api_name=name, concurrency_limit=None)
