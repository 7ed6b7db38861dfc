"""Every command module, imported once so that each registers its commands on `cli`."""

from . import admin, interchange, manager, patients, simulation, workflow_cmds

__all__ = ["admin", "interchange", "manager", "patients", "simulation", "workflow_cmds"]
