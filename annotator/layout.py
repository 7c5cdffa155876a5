"""The annotator's page: the Gradio layout, its UI events, and the server start (:func:`launch`).

Layout: the canvas (a ``gr.Image`` whose ``select`` event gives the clicked pixel) on the left;
category search, shortcut buttons, the segments list, progress and measured cost on the right.
Every event calls :class:`~pointly.annotator.app.AnnotatorApp` and answers with what the page
shows; the twin API endpoints (:mod:`~pointly.annotator.api`) are registered on the same Blocks.
UI events use ``trigger_mode="multiple"`` (Gradio would otherwise drop clicks that arrive while
one is processed) and no concurrency limit, so one user's click never waits for another's. The
page script (``static/annotator.js``) sends one user's actions one at a time, in order.

A canvas click carries what its tab shows (:func:`tab_click`); a click that carries no such view
comes from a page that is not synchronised with the server and is refused with a message. The
HTTP guard (:mod:`~pointly.annotator.guard`) refuses uploads and serves each canvas render only to
its own user.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from pointly.annotator.api import add_api_endpoints
from pointly.annotator.app import DEFAULT_USER, AnnotatorApp, request_user
from pointly.annotator.guard import Guard
from pointly.annotator.state import TabView
from pointly.annotator.users import make_auth
from pointly.pointgen.base.errors import PointlyError

STATIC = Path(__file__).with_name("static")
SHORTCUTS = [
    ("click", "a point in the current segment"),
    ("Shift+click", "a point NOT in the current segment (hollow ring)"),
    ("1 … 9, 0", "pick one of the first ten categories"),
    ("search box", "pick any category"),
    ("N", "new instance (thing categories)"),
    ("B", "box mode: the next two clicks are opposite corners of the instance's box"),
    ("X", "remove the current instance's box"),
    ("Z / Ctrl+Z", "undo the last point"),
    ("Del", "delete the current segment"),
    ("← / →", "previous / next image"),
    ("T", "toggle the target preview"),
]
#: the answer to a canvas click that does not say what its tab shows
NOT_SYNCHRONISED = "click NOT stored: this page is not synchronised with the server yet; click again"


def tab_click(shown: Any) -> tuple[TabView, int] | None:
    """What a canvas click carries: the acknowledged state its tab shows (the JSON of the hidden
    ``#pointly-ack`` box), to which the page script adds the point's ``label`` (0 for a
    Shift+click; 1 when absent). None when there is no state or it is malformed: the page is not
    synchronised with the server."""
    try:
        d = json.loads(shown) if isinstance(shown, str) and shown else None
    except json.JSONDecodeError:
        return None
    if not isinstance(d, dict) or not isinstance(d.get("image"), str):
        return None
    cid, seg, box, label = d.get("category_id"), d.get("segment"), d.get("box_mode", False), d.get("label", 1)
    if (
        not (cid is None or type(cid) is int)
        or not (seg is None or isinstance(seg, str))
        or type(box) is not bool
        or label not in (0, 1)
        or type(label) is bool
    ):
        return None
    return TabView(d["image"], cid, seg, box), label


def build_blocks(app: AnnotatorApp):
    """The Gradio Blocks of the annotator (launch it with :func:`launch`)."""
    store = app.store
    cat_choices = [(f"{c['name']} ({'thing' if c['isthing'] else 'stuff'})", c["id"]) for c in store.categories]
    key_help = " · ".join(
        f"**{(i + 1) % 10}** {store.cat_by_id[cid]['name']}" for i, cid in enumerate(app.digit_categories)
    )
    shortcuts = "\n".join(f"| {k} | {v} |" for k, v in SHORTCUTS)

    # renders are served in place from their per-user folders (the guard checks the owner),
    # never copied into Gradio's shared cache
    gr.set_static_paths([app.render_dir])
    with gr.Blocks(title="pointly annotator", analytics_enabled=False, delete_cache=(600, 1200)) as demo:
        with gr.Row():
            with gr.Column(scale=4):
                status = gr.Markdown(elem_id="pointly-status")
                canvas = gr.Image(
                    type="filepath",
                    interactive=False,
                    show_label=False,
                    buttons=[],
                    format="jpeg",
                    elem_id="pointly-canvas",
                    height=640,
                )
            with gr.Column(scale=2, min_width=300):
                category = gr.Dropdown(
                    choices=cat_choices,
                    value=None,
                    label="Category (type to search)",
                    filterable=True,
                    elem_id="pointly-category",
                )
                gr.Markdown("Keys: " + key_help, elem_id="pointly-digit-help")
                with gr.Row():
                    b_new = gr.Button("New instance (N)", elem_id="pointly-new", size="sm")
                    b_undo = gr.Button("Undo (Z)", elem_id="pointly-undo", size="sm")
                    b_del = gr.Button("Delete segment (Del)", elem_id="pointly-delete", size="sm", variant="stop")
                with gr.Row():
                    b_box = gr.Button("Box (B)", elem_id="pointly-box", size="sm")
                    b_unbox = gr.Button("Remove box (X)", elem_id="pointly-remove-box", size="sm")
                with gr.Row():
                    b_prev = gr.Button("← Previous", elem_id="pointly-prev", size="sm")
                    b_next = gr.Button("Next →", elem_id="pointly-next", size="sm")
                    b_prev_t = gr.Button("Target preview (T)", elem_id="pointly-preview", size="sm")
                segments = gr.Radio(choices=[], label="Segments (select to continue)", elem_id="pointly-segments")
                info = gr.Markdown(elem_id="pointly-info")
                gr.Markdown("**Shortcuts**\n\n| key | action |\n|---|---|\n" + shortcuts, elem_id="pointly-shortcuts")
                b_export = gr.Button("Export points JSON", elem_id="pointly-export", size="sm")
                gr.Markdown(
                    f"Project files on the server: `{store.dir.resolve()}` (`points.json`, "
                    f"`pointsup.json`, `journal/`; rewritten within a second of each change).",
                    elem_id="pointly-files",
                )
                ack = gr.Textbox(visible="hidden", elem_id="pointly-ack", show_label=False)
                exported = gr.Textbox(visible="hidden", elem_id="pointly-export-doc", show_label=False)
                digits = [
                    gr.Button(f"digit {(i + 1) % 10}", elem_id=f"pointly-digit-{(i + 1) % 10}", visible="hidden")
                    for i in range(10)
                ]

        # the acknowledged state (ack) is the last output of every event: the page script reads it
        # from each response as what its tab shows (static/annotator.js)
        outputs = [canvas, status, segments, category, info, ack]

        def view(user: str, messages: list[str]):
            _, notes = app._current(user)  # resume / skip undecodable images, with a message
            st = app.state(user, messages + notes)
            path = app.canvas(user, st)
            ack_text = json.dumps(
                {
                    "image": st["image"],
                    "points": st["points_on_image"],
                    "segment": st["current_segment"],
                    "category": st["category"],
                    "category_id": st["category_id"],
                    "preview": st["preview"],
                    "box_mode": st["box_mode"],
                    "corner": st["corner"],
                }
            )
            return (
                path,
                app.status_markdown(st),
                gr.update(choices=app.segment_choices(st), value=st["current_segment"]),
                gr.update(value=st["category_id"]),
                app.info_markdown(st),
                ack_text,
            )

        def ui(action: str, *args: Any):
            async def handler(request: gr.Request):
                user = request_user(request)
                return await app.in_order(user, lambda: view(user, app.act(user, action, *args)))

            return handler

        async def on_select(shown: str, evt: gr.SelectData, request: gr.Request):
            """A canvas click; ``shown`` is what the clicking tab shows (its acknowledged state)
            and the point's label."""
            user = request_user(request)
            click = tab_click(shown)
            if click is None:
                return await app.in_order(user, lambda: view(user, [NOT_SYNCHRONISED]))
            if not evt.index or len(evt.index) != 2:
                return await app.in_order(user, lambda: view(user, ["click inside the image"]))
            x, y = evt.index[0], evt.index[1]
            return await app.in_order(user, lambda: view(user, app.act(user, "click_display", x, y, *click)))

        async def on_export(request: gr.Request) -> str:
            """The points JSON for the Export button, in turn after the user's earlier actions."""
            return await app.in_order(request_user(request), lambda: json.dumps(app.export_document()))

        async def on_category(value, request: gr.Request):
            user = request_user(request)
            return await app.in_order(
                user, lambda: view(user, app.act(user, "category", value) if value is not None else [])
            )

        async def on_segment(value, request: gr.Request):
            user = request_user(request)
            return await app.in_order(user, lambda: view(user, app.act(user, "select", value) if value else []))

        # queue=False: each event is one POST whose response is its result, which the page script
        # (static/annotator.js) takes as the acknowledgement before it sends the next action;
        # trigger_mode="multiple": the page script already sends one action at a time, and Gradio
        # must not drop a repeated key (N N, Del Del) whose previous result is still being shown.
        common = dict(
            outputs=outputs,
            concurrency_limit=None,
            show_progress="hidden",
            queue=False,
            api_visibility="private",
            trigger_mode="multiple",
        )
        # the page script's view of this tab and the click's label, taken when the click is sent
        # (Gradio's copy of the ack box can lag one response behind); the box's own value without the script
        canvas.select(
            on_select, ack, js="(shown) => [window.pointlyClickView ? window.pointlyClickView() : shown]", **common
        )
        category.input(on_category, category, **common)
        segments.input(on_segment, segments, **common)
        b_new.click(ui("new"), None, **common)
        b_undo.click(ui("undo"), None, **common)
        b_del.click(ui("delete"), None, **common)
        b_prev.click(ui("navigate", -1), None, **common)
        b_next.click(ui("navigate", +1), None, **common)
        b_prev_t.click(ui("preview"), None, **common)
        b_box.click(ui("box_mode"), None, **common)
        b_unbox.click(ui("remove_box"), None, **common)
        # the document comes back in a hidden box, and the page saves it as a file (static/annotator.js)
        b_export.click(on_export, None, **dict(common, outputs=[exported])).then(
            None,
            exported,
            exported,
            js="(doc) => { window.pointlyDownload(doc, 'points.json'); return ''; }",
            queue=False,
            show_progress="hidden",
        )
        for i, b in enumerate(digits):
            b.click(ui("digit", i), None, **common)
        demo.load(ui("noop"), None, **common)

        # ---- twin API endpoints: the same AnnotatorApp.act code path, JSON state back
        add_api_endpoints(app)

    return demo


def page_head() -> str:
    """The keyboard-shortcut and click-keeping script, inlined into the page head."""
    js = (STATIC / "annotator.js").read_text(encoding="utf-8")
    return f"<script>{js}</script>"


def launch(
    app: AnnotatorApp,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    users: dict[str, str] | None = None,
    block: bool = True,
):
    """Start the server; with ``host`` other than localhost a users file is required."""
    if host not in ("127.0.0.1", "localhost", "::1") and not users:
        raise PointlyError(
            f"--host {host} exposes the annotator to the network without login",
            fix="pass --users FILE (name:password lines) or keep --host 127.0.0.1",
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_blocks(app)
    demo.queue(default_concurrency_limit=None)
    app.store.start_flusher()
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    guard = Middleware(Guard, renders=app.render_dir, default_user=DEFAULT_USER)
    try:
        return demo.launch(
            server_name=host,
            server_port=port,
            auth=make_auth(users) if users else None,
            auth_message="pointly annotator: log in with your annotator name",
            prevent_thread_lock=not block,
            show_error=True,
            quiet=True,
            head=page_head(),
            css=css,
            footer_links=["api"],
            ssr_mode=False,
            app_kwargs={"middleware": [guard]},
        )
    except OSError as exc:
        if "empty port" in str(exc) or "address already in use" in str(exc).lower():
            raise PointlyError(f"port {port} on {host} is in use", fix="pass another --port") from None
        raise
