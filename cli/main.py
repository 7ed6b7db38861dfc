"""The `pathway` command: a thin layer over `pathway.Clinic`.

`cli` is the click group (`app.py`, with the one place errors become exit codes);
the commands live in modules named for whom they serve (`patients`, `manager`,
`interchange`, `simulation`, `admin`, `workflow_cmds`), all registered here.
"""

from __future__ import annotations

from .app import cli, main
from .commands import admin, interchange, manager, patients, simulation, workflow_cmds

__all__ = ["admin", "cli", "interchange", "main", "manager", "patients", "simulation", "workflow_cmds"]

if __name__ == "__main__":
    main()
