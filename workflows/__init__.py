"""The pathways that ship with pathway: YAML definitions and the guard functions they name."""
