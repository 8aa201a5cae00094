"""The one progress bar style used by every long-running command."""

import contextlib

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

console = Console(stderr=True)


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
