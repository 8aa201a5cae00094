"""The one progress bar style used by every long-running command, and the one way a rich
console is made (:func:`make_console`)."""

import contextlib
import sys
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

# Output that is not a terminal (a log file, a pipe, a Slurm job) has no width to fit: rich's
# default there is 80 columns, which squeezes wide tables and cuts numbers off with "…". Such
# output gets lines as long as their content instead (a table's natural width).
LOG_WIDTH = 100_000


def make_console(stderr: bool = False, file: IO[str] | None = None) -> Console:
    """A rich Console: a terminal's own width, or unlimited width when writing to a file or pipe."""
    stream = file if file is not None else (sys.stderr if stderr else sys.stdout)
    probe = Console(file=stream)
    if probe.is_terminal:
        return Console(stderr=stderr, file=file)
    return Console(stderr=stderr, file=file, width=LOG_WIDTH)


console = make_console(stderr=True)


def make_progress(rate_unit: str | None = None) -> Progress:
    """A rich Progress with count, ETA and, when `rate_unit` is given, a throughput column.

    The rate is read from the task field ``rate`` (set it with ``progress.update(task, rate=x)``).
    """
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if rate_unit:
        columns.append(TextColumn("{task.fields[rate]:.1f} " + rate_unit))
    return Progress(*columns, console=console, transient=False)


def optional_progress(enabled: bool, rate_unit: str | None = None):
    """:func:`make_progress` when ``enabled``, else a context giving None (no bar: quiet runs,
    torchrun ranks > 0); callers test ``if bar is not None``."""
    return make_progress(rate_unit) if enabled else contextlib.nullcontext(None)
