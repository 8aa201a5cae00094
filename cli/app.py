"""The ``featcache`` typer app.

Each command group lives in its own module, its commands marked in a ``commands`` table (:mod:`cli.registry`).
Modules import torch and friends inside the command functions, so ``featcache --help``
stays fast. Every error ends the process with ONE line on stderr,
``featcache: error: <message>``, and a non-zero exit code, never a traceback: user errors
(:class:`FeatcacheError`, exit 1), write failures (a full disk, a read-only folder, a refused
permission or quota: :func:`featcache.utils.atomic.writing`, exit 1) and command-line mistakes
(click's usage errors, exit 2).
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import PackageNotFoundError, version

import typer

import featcache
from cli import data_cmd, extract_cmd, grid_cmd, heads_cmd, predict_cmd, prepare_cmd, report_cmd, synth_cmd, tsn_cmd
from featcache.errors import FeatcacheError
from featcache.utils.atomic import writing

app = typer.Typer(
    name="featcache",
    help="Temporal-to-Still Image Learning (T2SIL): cache features once, train heads in seconds.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: generate, import and check folder-layout datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def package_version() -> str:
    """The installed distribution's version (the one version source), else the source tree's."""
    try:
        return version("featcache")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return getattr(featcache, "__version__", "unknown")


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"featcache {package_version()}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                 help="Print the featcache version and exit."),
) -> None:
    """Temporal-to-Still Image Learning (T2SIL): cache features once, train heads in seconds."""


for module in (data_cmd, synth_cmd, prepare_cmd, extract_cmd, heads_cmd, grid_cmd, tsn_cmd, predict_cmd, report_cmd):
    module.commands.register(app, data_app)


def fail(message: str, code: int = 1) -> None:
    print(f"featcache: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def click_exception_types() -> tuple[type, ...]:
    """click's exception base: typer >= 0.20 ships its own copy of click, older typer uses click."""
    types = []
    for module in ("typer._click.exceptions", "click.exceptions"):
        try:
            types.append(importlib.import_module(module).ClickException)
        except ImportError:
            continue
    return tuple(types)


def usage_message(exc: Exception) -> str:
    """click's message on one line, with where to find the valid usage."""
    message = " ".join(exc.format_message().replace("Value error, ", "").split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and type(exc).__name__ != "ClickException":
        message += f" (see '{ctx.command_path} --help')"
    return message


def error_line(exc: FeatcacheError) -> str:
    """The one line of a featcache error. Raised inside a DataLoader worker, torch re-raises it in
    the main process with "Caught X in DataLoader worker process N." and the worker's traceback as
    its text: the line wanted is the traceback's last, without its "module.X: " prefix."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if lines[0].startswith("Caught ") and "Original Traceback" in str(exc):
        last = lines[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__qualname__}: "
        return last[len(prefix):] if last.startswith(prefix) else last.split(": ", 1)[-1]
    return lines[0]


def main(args: list[str] | None = None) -> None:
    interrupted = "interrupted; finished work is kept, rerun the same command to resume"
    try:
        with writing():  # a write failure no inner block named: one line with the file the OSError names
            code = app(args=args, prog_name="featcache", standalone_mode=False)
    except FeatcacheError as exc:
        fail(error_line(exc))
    except click_exception_types() as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as click prints it
            exc.show()
            raise SystemExit(exc.exit_code) from None
        fail(usage_message(exc), exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        fail(interrupted, 130)
    else:
        if code == 130:  # typer turns Ctrl-C inside a command into exit code 130
            fail(interrupted, 130)
        if isinstance(code, int) and code:
            raise SystemExit(code)


if __name__ == "__main__":
    main()
