"""The `kmemspec` command line: one group, one module per subcommand.

Exit codes everywhere: 0 all good; 1 something was found (a broken invariant, a
kernel-API misuse in a scenario, a violation, a counterexample, a refuted obligation);
2 bad input or usage (with what and where).
"""

from __future__ import annotations

import importlib

import click

from . import __version__

# Each module kmemspec/cmd_<name>.py defines `command`, a click.Command.
COMMAND_MODULES = (
    "run",
    "prove",
    "explore",
    "verify",
    "record",
    "watch",
    "trace",
    "conform",
    "vectors",
    "render",
    "view",
)


class _Commands(click.Group):
    """The subcommands, each imported when it is run (or listed by --help): a
    command does not pay for importing the others (`prove` imports Z3)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMAND_MODULES:
            return None
        return importlib.import_module(f".cmd_{name}", __package__).command


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kmemspec")
def main() -> None:
    """An executable, formally checked specification of Linux memory management."""
