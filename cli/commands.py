"""Every command module, imported once so that each registers its commands on `cli`."""

from . import (
    admin,
    identity_cmds,
    interchange,
    manager,
    patients,
    serve_cmd,
    show_cmd,
    simulation,
    subscriber_cmds,
    workflow_cmds,
)

__all__ = [
    "admin",
    "identity_cmds",
    "interchange",
    "manager",
    "patients",
    "serve_cmd",
    "show_cmd",
    "simulation",
    "subscriber_cmds",
    "workflow_cmds",
]
