"""The ``pointly`` command group.

Sub-commands live in their own modules (``pointly.cli.<module>``) and are imported only when
used, so ``pointly cost`` does not pay for importing torch. To add a command, add a module that
defines a click command and register it in :data:`COMMANDS`.

User mistakes raise :class:`pointly.pointgen.base.errors.PointlyError`; :func:`main` prints them as
one line on stderr and exits with code 2.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import is_location_error, location_error
from pointly.pointgen.base.limits import DEFAULT_MAX_PIXELS, ENV_VAR, set_max_pixels

#: command name -> "module:attribute" inside pointly.cli
COMMANDS: dict[str, str] = {
    "simulate": "simulate:simulate",
    "cost": "cost:cost",
    "data": "data_cmd:data",
    "targets": "targets:targets",
    "study": "study:study",
    "train": "train:train",
    "pretrain": "pretrain:pretrain",
    "evaluate": "evaluate:evaluate",
    "predict": "predict:predict",
    "convert-weights": "convert_weights:convert_weights",
    "annotate": "annotate:annotate",
    "demo": "demo:demo",
    "export": "export_cmd:export_points",
    "import": "import_cmd:import_points",
}


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._load(name) is not None)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"pointly.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"pointly.cli.{module_name}":
                return None  # the command's module is not installed
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option(
    "--max-megapixels",
    type=click.FloatRange(min=1e-6),
    default=None,
    help="Pixel budget: an image record larger than this is refused before anything is "
    f"allocated [default: {DEFAULT_MAX_PIXELS / 1e6:g}, or ${ENV_VAR} in pixels].",
)
@click.version_option(package_name="pointly")
def cli(verbose: int, max_megapixels: float | None) -> None:
    """pointly: pointly-supervised panoptic segmentation, from clicks to PQ."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    set_max_pixels(None if max_megapixels is None else int(max_megapixels * 1e6))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="pointly", standalone_mode=False)
    except PointlyError as exc:
        click.echo(f"pointly: error: {exc.one_line()}", err=True)
        return 2
    except OSError as exc:
        # the last guard: outputs are checked before any work (pointly.cli.paths) and written
        # through pointgen.io_utils, so a file-system refusal arriving here is still the user's
        # location, not a bug; anything else propagates as a traceback
        if not is_location_error(exc) or exc.filename is None:
            raise
        click.echo(f"pointly: error: {location_error(exc, exc.filename).one_line()}", err=True)
        return 2
    except click.exceptions.Abort:
        click.echo("pointly: aborted", err=True)
        return 130
    except click.UsageError as exc:
        # one line, like every other user mistake, with the way to the command's help
        where = exc.ctx.command_path if exc.ctx is not None else "pointly"
        click.echo(f"pointly: error: {exc.format_message()} (see '{where} --help')".replace("\n", " "), err=True)
        return 2
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
