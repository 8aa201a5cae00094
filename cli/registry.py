"""How a command module hands its commands to the app: the command functions live at module
level, marked ``@commands.command("name")`` (``data=True``: under ``featcache data``), and the
module's ``commands.register`` adds them, in the order they were marked, when
:mod:`cli.app` builds the app."""

from __future__ import annotations

from typing import Any, Callable

from typer.core import TyperCommand


class CommandTable:
    """The commands one module defines, until :meth:`register` adds them to the typer apps."""

    def __init__(self) -> None:
        self._marked: list[tuple[bool, str, dict[str, Any], Callable]] = []

    def command(self, name: str, *, data: bool = False, lazy_epilog: Callable[[], str] | None = None,
                **options: Any) -> Callable[[Callable], Callable]:
        """Mark a function as command ``name`` (``options``: typer's, e.g. ``epilog``; ``lazy_epilog``:
        an epilog computed only when the command's help is shown)."""
        if lazy_epilog is not None:
            options["cls"] = lazy_epilog_command(lazy_epilog)

        def mark(function: Callable) -> Callable:
            self._marked.append((data, name, options, function))
            return function

        return mark

    def register(self, app, data_app) -> None:
        for data, name, options, function in self._marked:
            (data_app if data else app).command(name, **options)(function)


def lazy_epilog_command(epilog: Callable[[], str]) -> type:
    """A typer command class whose help ends with ``epilog()``, computed when the help is shown (so
    building the app, e.g. for ``featcache --help``, does not import what the epilog needs)."""
    class LazyEpilogCommand(TyperCommand):
        def format_help(self, ctx, formatter) -> None:
            self.epilog = epilog()
            super().format_help(ctx, formatter)

    return LazyEpilogCommand
