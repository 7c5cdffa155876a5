"""``pointly annotate``: the point-annotation web app (see docs/annotator.md).

Thin: parses the options, builds the image catalog, the project store and the app, and launches
the server. Without IMAGES_DIR it opens the bundled sample images with the synthetic categories
and keeps the project in ``$XDG_DATA_HOME/pointly/sample-project-<hash of the samples path>``.
"""

from __future__ import annotations

import signal
from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


def check_port_free(host: str, port: int) -> None:
    """Refuse a port that cannot be listened on, before the project folder is created (the server
    binds it again a moment later; a race with another program is reported by the launch)."""
    import errno
    import socket

    from pointly.pointgen.base.errors import PointlyError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PointlyError(
                    f"port {port} on {host} is in use", record="--port", fix="pass another --port"
                ) from None
            raise PointlyError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                record="--port",
                fix="pass another --port or --host",
            ) from None


@click.command()
@click.argument("images_dir", required=False, type=click.Path(path_type=Path))
@click.option(
    "--categories",
    default=None,
    help="'coco', 'synthetic' or a categories JSON file (default: coco; synthetic for the samples).",
)
@click.option(
    "--project",
    type=OUTPUT_FOLDER,
    default=None,
    help="Project folder (journals, points.json, pointsup.json). Default: ./annotations-<IMAGES_DIR name>.",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to bind; anything but localhost requires --users."
)
@click.option("--port", default=7860, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--users",
    "users_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Users file (name:password per line) — turns on login; clicks are attributed.",
)
@click.option(
    "--goal",
    default=20,
    show_default=True,
    type=click.IntRange(1, 10000),
    help="Points per segment to aim for (shown as progress).",
)
@click.option(
    "--idle-cutoff",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=1.0),
    help="Gaps between actions longer than this (seconds) are not counted as work.",
)
@click.option(
    "--preview-shape",
    type=click.Choice(["concave", "convex", "watershed"]),
    default="concave",
    show_default=True,
    help="Shape of the target preview (T); watershed: the regions the points grow "
    "to over the image's colour edges (a click-to-mask assistant).",
)
@click.option(
    "--preview-dilation",
    default=None,
    help="Dilation shown in the target preview, as in `pointly targets` (0.02, 8px; off).",
)
@click.option(
    "--max-megapixels",
    default=50.0,
    show_default=True,
    type=click.FloatRange(min=0.01),
    help="Images larger than this are skipped with a message.",
)
@click.option(
    "--rebuild", is_flag=True, help="Only rewrite points.json and pointsup.json from the journals, then exit."
)
@click.option(
    "--images-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A COCO JSON listing the images: the project takes its image ids (fixed at the project's "
    "first start), so points.json lines up with it.",
)
def annotate(
    images_dir: Path | None,
    categories: str | None,
    project: Path | None,
    host: str,
    port: int,
    users_file: Path | None,
    goal: int,
    idle_cutoff: float,
    preview_shape: str,
    preview_dilation: str | None,
    max_megapixels: float,
    rebuild: bool,
    images_json: Path | None,
) -> None:
    """Annotate IMAGES_DIR with points in the browser (no argument: the bundled samples)."""
    from pointly.annotator.images import ImageCatalog, coco_image_ids
    from pointly.annotator.preview import preview_options
    from pointly.annotator.samples import default_project_dir, samples_dir
    from pointly.annotator.store import ProjectStore
    from pointly.annotator.users import load_users
    from pointly.pointgen.base.categories import load_categories
    from pointly.pointgen.base.errors import PointlyError
    from pointly.pointgen.base.files import check_output

    # every input is checked before the project folder is touched
    if images_dir is None:
        images_dir = samples_dir()
        categories = categories or "synthetic"
        project = project or default_project_dir(images_dir)
    categories = categories or "coco"
    project = check_output(
        project or Path.cwd() / f"annotations-{Path(images_dir).resolve().name}", folder=True, option="--project"
    )
    if host not in ("127.0.0.1", "localhost", "::1") and not users_file:
        raise PointlyError(
            f"--host {host} would expose the annotator without login",
            fix="pass --users FILE (name:password lines) or keep --host 127.0.0.1",
        )
    users = load_users(users_file) if users_file else None
    category_list = load_categories(categories)
    try:
        preview_options(preview_shape, preview_dilation)
    except PointlyError as exc:
        raise PointlyError(exc.problem, record="--preview-dilation", fix=exc.fix) from None
    catalog = ImageCatalog(images_dir, max_pixels=int(max_megapixels * 1e6))
    coco_ids = coco_image_ids(catalog, images_json) if images_json is not None else None
    skipped = [e for e in catalog.entries if e.problem]
    if rebuild:
        if not (project / "journal").is_dir():
            raise PointlyError(
                "no annotation project here (no journal/ folder)",
                file=project,
                record="--rebuild",
                fix="pass the --project folder of an existing project",
            )
    else:
        if len(skipped) == len(catalog):
            raise PointlyError(
                f"none of the {len(catalog)} images can be read ({skipped[0].problem})",
                file=catalog.root / skipped[0].file_name,
                fix="pass a folder of readable images",
            )
        check_port_free(host, port)
    store = ProjectStore(
        project, catalog, category_list, goal=goal, idle_cutoff=idle_cutoff, coco_ids=coco_ids, coco_file=images_json
    )
    if rebuild:
        store.close()
        click.echo(f"rewrote {project / 'points.json'} and {project / 'pointsup.json'}")
        return
    from pointly.annotator.app import AnnotatorApp
    from pointly.annotator.layout import launch  # imports gradio (seconds)

    app = AnnotatorApp(store, preview_shape=preview_shape, preview_dilation=preview_dilation)
    for e in skipped:
        click.echo(f"skipping {e.file_name}: {e.problem}", err=True)
    click.echo(
        f"pointly annotate: {len(catalog) - len(skipped)} images in {catalog.root}, "
        f"project {project}; open http://{host}:{port}/",
        err=True,
    )

    def stop(signum, frame):  # SIGTERM: leave like Ctrl+C, so the points files are written last
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        launch(app, host=host, port=port, users=users, block=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        store.close()
