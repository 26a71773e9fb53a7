"""``python -m gwlog`` runs the CLI."""

from gwlog.cli import app

app()
