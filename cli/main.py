"""The `pathway` command: a thin layer over `pathway.Clinic`.

`cli` is the click group (`app.py`, with the one place errors become exit codes);
the commands live in modules named for whom they serve (`patients`, `manager`,
`interchange`, `simulation`, `admin`, `workflow_cmds`), each registered on `cli`
when `commands` imports it.
"""

from __future__ import annotations

import sys

from . import commands
from .app import cli, quiet_broken_pipe

__all__ = ["cli", "commands", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="pathway")
    except BrokenPipeError:  # raised while flushing standard output at exit
        quiet_broken_pipe()
        sys.exit(1)


if __name__ == "__main__":
    main()
