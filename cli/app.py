"""The ``featcache`` typer app.

Each command group lives in its own module with a ``register(app, data_app)`` hook.
Modules import torch and friends inside the command functions, so ``featcache --help``
stays fast. User errors (:class:`FeatcacheError`) end the process with one line on
stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import sys

import typer

from cli import data_cmd, extract_cmd, grid_cmd, heads_cmd, prepare_cmd, report_cmd, synth_cmd, tsn_cmd
from featcache.errors import FeatcacheError

app = typer.Typer(
    name="featcache",
    help="Temporal-to-Still Image Learning (T2SIL): cache features once, train heads in seconds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Datasets: generate, import and check folder-layout datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

for module in (data_cmd, synth_cmd, prepare_cmd, extract_cmd, heads_cmd, grid_cmd, tsn_cmd, report_cmd):
    module.register(app, data_app)


def fail(message: str, code: int = 1) -> None:
    print(f"featcache: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main() -> None:
    try:
        app()
    except FeatcacheError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except KeyboardInterrupt:
        fail("interrupted; finished work is kept, rerun the same command to resume", 130)


if __name__ == "__main__":
    main()
