"""The `courier` command."""
