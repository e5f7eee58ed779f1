"""What the four command lines share: `--version`, and help that reads as users of typer-based
tools expect (`Usage: edge-convert [OPTIONS] MODEL`, flags without a `<bool>` type, examples
at the end).

Every CLI passes `cls=HelpCommand` (or `HelpGroup` for `edge-bench`) and takes a `VersionOption`.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from edge_runtime.version import __version__


def _print_version(ctx: typer.Context, value: Optional[bool]) -> None:
    if value and not ctx.resilient_parsing:
        typer.echo(f"{ctx.find_root().info_name} {__version__}")
        raise typer.Exit()


VersionOption = Annotated[
    Optional[bool],
    typer.Option("--version", callback=_print_version, is_eager=True, expose_value=False, help="Print the version and exit."),
]


def examples(*lines: str) -> str:
    """A help epilog listing example command lines.

    Args:
        lines: command lines, each optionally followed by `  # what it does`.

    Returns:
        The epilog text for `@app.command(epilog=...)`, escaped so that `[...]` in a line is
        printed, not read as rich markup.
    """
    return "Examples:\n\n" + "\n".join(f"  {escape(line)}" for line in lines)


class _PlainFlags:
    """Flags take no value, so their help row shows no type (typer would print `<bool>`)."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
            elif not isinstance(param, TyperOption) and getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""  # the --help option click adds itself
        return params


class HelpCommand(_PlainFlags, TyperCommand):
    """A command whose usage line names arguments the usual way: `MODEL`, `[MODEL]...`."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument) and not param.hidden:
                name = param.metavar or param.name.upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class HelpGroup(_PlainFlags, TyperGroup):
    """A command group (edge-bench) with the same flag display."""
