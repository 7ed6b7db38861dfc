"""The `pathway` command-line interface (click), a thin layer over `pathway.Clinic`."""
