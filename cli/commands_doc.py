"""``docs/commands.md`` from the typer app itself, so the reference never drifts from ``--help``.

    python -m cli.commands_doc > docs/commands.md      (or: make docs)

Every command and sub-command gets its usage line, its help text and a table of its
arguments and options (type or choices, default, help). ``tests/test_packaging.py`` fails
when the committed file differs from what this prints.
"""

from __future__ import annotations

import enum
import types
import typing

import typer

from cli.app import app

# Typer carries its own copy of click; the walk below relies only on the attributes both have.

HEADER = """# featcache commands

Generated from the command-line app by `python -m cli.commands_doc` (`make docs`); do not edit by hand.
Every command also prints this with `--help`. File formats: [formats.md](formats.md);
`metrics.json`: [metrics.md](metrics.md).
"""


def _cell(text) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _annotation(param):
    """The Python type of a parameter (typer keeps it in ``type_descriptor``), Optional unwrapped."""
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    return annotation


def _kind(param) -> str:
    annotation = _annotation(param)
    many = typing.get_origin(annotation) in (list, tuple) or param.multiple or param.nargs == -1
    if many and typing.get_args(annotation):
        annotation = typing.get_args(annotation)[0]
    suffix = " ..." if many else ""
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return " \\| ".join(f"`{member.value}`" for member in annotation) + suffix
    if annotation is bool or getattr(param, "is_flag", False):
        return "flag"
    if hasattr(getattr(param, "type", None), "name"):
        return param.type.name.upper() + suffix
    return (getattr(annotation, "__name__", str(annotation)).upper() if annotation is not None else "TEXT") + suffix


def _default(param) -> str:
    default = param.default
    if callable(default) or default is None or default == () or getattr(param, "is_flag", False) and default is False:
        return ""
    if hasattr(default, "value"):  # an Enum member
        default = default.value
    return f"`{default}`"


def _names(param) -> str:
    if param.param_type_name == "argument":
        return f"`{(param.metavar or param.name).upper()}` (argument{'' if param.required else ', optional'})"
    names = " / ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
    return names + (" (required)" if param.required else "")


def _usage(command) -> str:
    pieces = ["[OPTIONS]"]
    for p in command.params:
        if p.param_type_name == "argument":
            name = (p.metavar or p.name).upper() + (" ..." if p.nargs == -1 else "")
            pieces.append(name if p.required else f"[{name}]")
    return " ".join(pieces)


def _command_section(path: str, command) -> list[str]:
    lines = [f"## `{path}`", "", f"Usage: `{path} {_usage(command)}`", ""]
    if command.help:
        lines += [command.help.strip(), ""]
    params = [p for p in command.params if not getattr(p, "hidden", False) and p.name != "help"]
    if params:
        lines += ["| argument / option | type | default | help |", "|---|---|---|---|"]
        for p in params:
            lines.append(f"| {_names(p)} | {_kind(p)} | {_default(p)} | {_cell(getattr(p, 'help', '') or '')} |")
        lines.append("")
    return lines


def _walk(path: str, command, parent) -> list[str]:
    ctx = typer.Context(command, info_name=path.split()[-1], parent=parent)
    if hasattr(command, "list_commands"):  # a group
        lines = []
        if parent is None:
            lines += [command.help.strip(), ""] if command.help else []
            lines += _options_of_root(command)
        else:
            lines += [f"## `{path}` (command group)", ""] + ([command.help.strip(), ""] if command.help else [])
        for name in command.list_commands(ctx):
            lines += _walk(f"{path} {name}", command.get_command(ctx, name), ctx)
        return lines
    return _command_section(path, command)


def _options_of_root(group) -> list[str]:
    params = [p for p in group.params if not getattr(p, "hidden", False) and p.name != "help"]
    if not params:
        return []
    lines = ["## `featcache` (global options)", "", "| option | type | default | help |", "|---|---|---|---|"]
    lines += [f"| {_names(p)} | {_kind(p)} | {_default(p)} | {_cell(getattr(p, 'help', '') or '')} |" for p in params]
    return lines + [""]


def commands_markdown() -> str:
    root = typer.main.get_command(app)
    return HEADER + "\n" + "\n".join(_walk("featcache", root, None)).rstrip() + "\n"


if __name__ == "__main__":
    print(commands_markdown(), end="")
